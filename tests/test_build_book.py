"""tools/build_book.py's checks, without Sphinx or a browser: every notebook is a chapter, a missing or unexecuted
chapter fails the build, the glossary defines the terms the series uses. (tests/test_book.py builds the site.)"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_book", ROOT / "tools" / "build_book.py")
build_book = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = build_book
_spec.loader.exec_module(build_book)

#: The terms the glossary must define (each a term of its Sphinx glossary).
GLOSSARY_TERMS = [
    "GTZAN", "log-mel spectrogram", "patch", "embedding", "VGGish", "musicnn", "MSD", "MTT", "YAMNet", "AudioSet",
    "augmentation", "time-stretch", "pitch-shift", "phase vocoder", "SNR", "CNN", "max-pooling", "dropout",
    "softmax", "batch norm", "RMSprop", "cross-entropy", "accuracy", "precision", "recall", "F1",
    "confusion matrix", "stratified split", "k-fold", "artist effect", "fault-filtered split",
    "confidence interval", "McNemar test", "fine-tuning", "linear probe",
]


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    """A copy of notebooks/ (sources and executed notebooks) that build_book reads instead of the real one."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for path in build_book.NOTEBOOKS.glob("[0-9][0-9]_*"):
        (folder / path.name).symlink_to(path)
    monkeypatch.setattr(build_book, "NOTEBOOKS", folder)
    return folder


def test_every_notebook_is_a_chapter_in_order():
    parts = build_book.read_toc()
    chapters = build_book.load_chapters(parts)
    assert list(chapters) == sorted(path.stem for path in build_book.NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    assert [stem[:2] for stem in chapters] == [f"{n:02d}" for n in range(1, 8)]
    appendix = [part for part in parts if part["caption"] == "Appendix (optional)"]
    assert [entry.get("chapter") for entry in appendix[0]["chapters"]] == ["07_scaling_out"]
    for stem, notebook in chapters.items():
        assert build_book.chapter_title(notebook, stem).startswith(stem[:2] + " · ")


def test_a_missing_executed_notebook_fails_the_build(notebooks):
    (notebooks / "06_fine_tuning.ipynb").unlink()
    with pytest.raises(build_book.BookError, match=r"notebooks/06_fine_tuning\.ipynb is missing"):
        build_book.load_chapters(build_book.read_toc())


def test_a_notebook_outside_the_table_of_contents_fails_the_build(notebooks):
    (notebooks / "08_extra.py").write_text("# %%\n")
    with pytest.raises(build_book.BookError, match=r"08_extra\.py is not a chapter"):
        build_book.load_chapters(build_book.read_toc())


def test_an_unexecuted_notebook_fails_the_build(notebooks):
    target = notebooks / "02_augmentation.ipynb"
    notebook = nbformat.read(target.resolve(), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    target.unlink()
    nbformat.write(notebook, target)
    with pytest.raises(build_book.BookError, match=r"02_augmentation\.ipynb has no outputs"):
        build_book.load_chapters(build_book.read_toc())


def test_glossary_defines_the_series_terms():
    text = (build_book.BOOK / "glossary.md").read_text()
    body = text.split("```{glossary}", 1)[1].split("\n```", 1)[0]
    terms = re.findall(r"^(\S.*)$", body, flags=re.M)
    terms = [term for term in terms if not term.startswith(":")]
    assert sorted(set(GLOSSARY_TERMS) - set(terms)) == []


def test_further_reading_of_every_chapter_is_a_list():
    for stem in build_book.toc_chapters(build_book.read_toc()):
        lines = (build_book.BOOK / "reading" / f"{stem}.md").read_text().splitlines()
        assert lines and lines[0].startswith("- "), stem


def test_the_book_executes_nothing():
    conf = (build_book.BOOK / "conf.py").read_text()
    assert re.search(r'^nb_execution_mode = "off"$', conf, flags=re.M)
