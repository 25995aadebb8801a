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


def test_every_package_and_resource_is_declared_for_the_wheel():
    """What a wheel would carry, by the rules setuptools applies (building one takes minutes on 2 cores): every
    folder with an ``__init__.py`` is found by ``packages.find`` and every file below ``resources/`` matches a
    ``package-data`` glob (``*`` stops at ``/``, as in setuptools), so an installed copy finds them too."""
    import setuptools

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(setuptools.find_packages(where=ROOT, include=config["packages"]["find"]["include"]))
    on_disk = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "genrelib").rglob("__init__.py")}
    assert on_disk <= found, f"packages a wheel would leave out: {sorted(on_disk - found)}"
    package = ROOT / "genrelib"
    declared = {path for pattern in config["package-data"]["genrelib"] for path in package.glob(pattern)}
    shipped = {path for path in (package / "resources").rglob("*") if path.is_file()}
    assert shipped and shipped <= declared, f"resources a wheel would leave out: {sorted(shipped - declared)}"


def test_package_data_loads_through_importlib_resources():
    assert len(data.gtzan_index()) == 1000
    assert len(data.split_fault_filtered().train) == 443
    assert len(data.artist_index()) == 1000


def test_console_script_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["genrelib"] == "genrelib.cli:main"
