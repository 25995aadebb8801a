"""jupytext.toml: saving a paired notebook in JupyterLab (jupytext's contents manager, as Lab runs it) rewrites
nothing in its ``.py`` source, whether the student opened the ``.py`` or the ``.ipynb``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.fixture(scope="module")
def contents(tmp_path_factory):
    pytest.importorskip("jupyter_server", reason="jupyter_server comes with the dev extra's jupyterlab")
    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "jupytext.toml", root / "jupytext.toml")
    (root / "notebooks").mkdir()
    for source in SOURCES:
        shutil.copy(source, root / "notebooks" / source.name)
    return build_sync_jupytext_contents_manager_class(LargeFileManager)(root_dir=str(root)), root


@pytest.mark.parametrize("opened", [".py", ".ipynb"])
def test_saving_a_notebook_in_lab_changes_nothing_in_its_source(contents, opened):
    manager, root = contents
    for source in SOURCES:
        name = f"notebooks/{source.stem}"
        if opened == ".ipynb" and not (root / f"{name}.ipynb").exists():
            manager.save(manager.get(f"{name}.py"), f"{name}.py")  # the first save writes the paired .ipynb
        manager.save(manager.get(f"{name}{opened}"), f"{name}{opened}")
        assert (root / f"{name}.py").read_text() == source.read_text(), f"saving {name}{opened} rewrote {name}.py"
