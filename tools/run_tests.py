"""`make test`: unit tests, then every notebook under nbval in quick mode.

Notebooks are jupytext percent-format ``.py`` files (the source of truth). Each is converted to a
notebook under ``build/nbtest/``; when an executed ``.ipynb`` is committed beside it, its outputs are
kept (``jupytext --update``) so that nbval can compare the cells marked ``# NBVAL_CHECK_OUTPUT`` (facts
such as track counts) with what the committed demo run printed. Quick mode (``GENRELIB_QUICK=1``) and a
throw-away output folder keep CI fast and leave ``figures/`` and ``results/`` untouched.

pytest exits with 5 when it collected nothing: that is a failure here (a test stage that tests nothing
must not look green), reported as such.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "nbtest"
NO_TESTS_COLLECTED = 5


def build_test_notebooks() -> list[Path]:
    if BUILD.exists():
        shutil.rmtree(BUILD)
    BUILD.mkdir(parents=True)
    built = []
    for source in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        target = BUILD / f"{source.stem}.ipynb"
        committed = source.with_suffix(".ipynb")
        command = [sys.executable, "-m", "jupytext", "--quiet", "--to", "ipynb", "-o", str(target)]
        if committed.exists():
            shutil.copy(committed, target)
            command.insert(3, "--update")
        subprocess.run([*command, str(source)], check=True)
        built.append(target)
    return built


def pytest(args: list[str], env: dict[str, str], stage: str) -> int:
    code = subprocess.call([sys.executable, "-m", "pytest", *args], cwd=ROOT, env=env)
    if code == NO_TESTS_COLLECTED:
        print(f"run_tests: {stage}: pytest collected no tests (exit code 5) - treated as a failure", file=sys.stderr)
        return 1
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks-only", action="store_true")
    parser.add_argument("--unit-only", action="store_true")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for the unit-test run")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    env.setdefault("GENRELIB_CACHE", str(ROOT / ".cache" / "genrelib"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    code = 0
    if not args.notebooks_only:
        # The 15 slowest tests end the log: where CI's minutes go.
        code = pytest(["tests", "--durations=15", *args.pytest_args], env, "unit tests") or code
    if not args.unit_only:
        notebooks = build_test_notebooks()
        if notebooks:
            output = ROOT / "build" / "test-output"
            nb_env = {**env, "GENRELIB_QUICK": "1", "GENRELIB_OUTPUT": str(output)}
            code = pytest(["--nbval-lax", "-p", "no:cacheprovider", *map(str, notebooks)], nb_env, "notebooks") or code
        else:
            print("run_tests: no notebooks found under notebooks/", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
