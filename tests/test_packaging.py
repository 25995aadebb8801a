"""The install story stays consistent: pins agree, package data ships, the CLI entry point exists."""

import re
import tomllib
from pathlib import Path

from genrelib import data

ROOT = Path(__file__).resolve().parents[1]


def pins(lines):
    found = {}
    for line in lines:
        match = re.match(r"^\s*-?\s*\"?([A-Za-z0-9_.\-\[\]]+)==([^\"\s,]+)", line)
        if match:
            found[match[1].split("[")[0].lower()] = match[2]
    return found


def test_environment_yml_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    conda = pins((ROOT / "environment.yml").read_text().splitlines())
    assert declared == conda


def test_lock_file_agrees_with_direct_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    lock = pins((ROOT / "requirements" / "lock.txt").read_text().splitlines())
    for name, version in declared.items():
        locked = lock.get(name.replace("_", "-")) or lock.get(name.replace("-", "_"))
        assert locked == version, f"{name}: pyproject pins {version}, lock has {locked}"


def test_package_data_is_installed():
    assert len(data.gtzan_index()) == 1000
    assert len(data.split_fault_filtered().train) == 443


def test_console_script_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["genrelib"] == "genrelib.cli:main"
