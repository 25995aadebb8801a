"""`make book`: the executed notebook series as a static HTML site; nothing is executed.

The committed ``notebooks/NN_*.ipynb`` (what ``make demo`` ran and saved, outputs and figures included) are
rendered as they are by Sphinx with MyST-NB (``nb_execution_mode = "off"``) and the Sphinx Book Theme. This
script stages ``book/`` (configuration and pages), copies of the notebooks (each with its "Further reading" from
``book/reading/<stem>.md`` appended) and ``figures/*.png`` into ``OUT/src``, writes the table of contents from
``book/_toc.yml``, runs Sphinx into ``OUT/html`` and checks the result.

It fails (exit 1) when a chapter is missing: a notebook source without its executed ``.ipynb``, a notebook that
``_toc.yml`` does not name (or a name with no notebook), an unexecuted notebook, a chapter without further
reading, a page that did not come out, or a Sphinx error or warning that means lost content (a broken toctree,
an unreadable image, an unknown directive or term). Other Sphinx warnings are printed and do not fail the build.
Staged files are rewritten only when they change, so a second build is incremental.
"""

from __future__ import annotations

import argparse
import html as html_lib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
FIGURES = ROOT / "figures"
DEFAULT_OUTPUT = ROOT / "build" / "book"
PAGES = ("conf.py", "index.md", "glossary.md", "figures.md", "references.md")

#: Sphinx warnings that mean a page, an image or a link target is missing: these fail the build.
FATAL_WARNINGS = re.compile(
    r"ERROR|CRITICAL|toctree contains reference to nonexisting document|isn't included in any toctree"
    r"|image file not readable|Unknown directive type|term not in glossary|undefined label"
    r"|Could not lex literal_block|Notebook JSON is invalid")


class BookError(Exception):
    """The book cannot be built as asked (the message says what is missing)."""


# -- the [book] extra --------------------------------------------------------------------------------------

def extra_requirements(extra: str = "book") -> list[str]:
    """The pinned requirements of an optional extra (``book``, ``browser``) in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"][extra])


def missing_requirements(requirements: list[str]) -> list[str]:
    """Those of ``name==version`` requirements that are not installed at exactly that version."""
    missing = []
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            missing.append(requirement)
    return missing


def install(requirements: list[str]) -> None:
    """pip-install requirements into this interpreter, constrained by the lock file (no locked pin moves)."""
    print(f"build_book: installing {' '.join(requirements)}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-c", str(ROOT / "requirements" / "lock.txt"), *requirements], check=True)


# -- chapters ----------------------------------------------------------------------------------------------

def read_toc() -> list[dict]:
    return yaml.safe_load((BOOK / "_toc.yml").read_text())["parts"]


def toc_chapters(parts: list[dict]) -> list[str]:
    return [entry["chapter"] for part in parts for entry in part["chapters"] if "chapter" in entry]


def chapter_title(notebook: nbformat.NotebookNode, stem: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise BookError(f"notebooks/{stem}.ipynb has no '# ' heading to give the chapter its title")


def image_outputs(notebook: nbformat.NotebookNode) -> int:
    """How many outputs of a notebook are images (each becomes one <img> in its page)."""
    return sum(any(mime.startswith("image/") for mime in output.get("data", {}))
               for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", []))


def load_chapters(parts: list[dict]) -> dict[str, nbformat.NotebookNode]:
    """The executed notebook of every chapter, checked against notebooks/ and _toc.yml; BookError if one is missing."""
    sources = sorted(path.stem for path in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    named = toc_chapters(parts)
    problems = []
    if not sources:
        problems.append("no notebooks/NN_*.py sources found")
    problems += [f"notebooks/{stem}.py is not a chapter of book/_toc.yml" for stem in sources if stem not in named]
    problems += [f"book/_toc.yml names chapter {stem}, but notebooks/{stem}.py does not exist"
                 for stem in named if stem not in sources]
    problems += [f"book/_toc.yml names chapter {stem} twice" for stem in set(named) if named.count(stem) > 1]
    chapters = {}
    for stem in named:
        executed = NOTEBOOKS / f"{stem}.ipynb"
        if not executed.exists():
            problems.append(f"notebooks/{stem}.ipynb is missing (the book shows executed notebooks: run make demo)")
            continue
        notebook = nbformat.read(executed, as_version=4)
        if not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"):
            problems.append(f"notebooks/{stem}.ipynb has no outputs: it was never executed (run make demo)")
        if not (BOOK / "reading" / f"{stem}.md").exists():
            problems.append(f"book/reading/{stem}.md (the chapter's further reading) is missing")
        chapters[stem] = notebook
    if problems:
        raise BookError("; ".join(problems))
    return chapters


# -- staging -----------------------------------------------------------------------------------------------

def write_if_changed(path: Path, data: bytes, written: set[Path]) -> None:
    written.add(path)
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def toctrees(parts: list[dict]) -> str:
    blocks = []
    for part in parts:
        entries = [f"chapters/{entry['chapter']}" if "chapter" in entry else entry["page"]
                   for entry in part["chapters"]]
        blocks.append("```{toctree}\n:maxdepth: 1\n:caption: " + part["caption"] + "\n\n" + "\n".join(entries) + "\n```\n")
    return "\n".join(blocks)


def book_chapter(stem: str, notebook: nbformat.NotebookNode, note: str | None) -> nbformat.NotebookNode:
    """A copy of the executed notebook with its note (under the first cell) and further reading (at the end)."""
    copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
    reading = (BOOK / "reading" / f"{stem}.md").read_text().strip()
    copy.cells.append(nbformat.v4.new_markdown_cell(
        f"## Further reading\n\n{reading}\n\nEvery chapter's reading: [references](../references.md).",
        id=f"book-further-reading"))
    if note:
        copy.cells.insert(1, nbformat.v4.new_markdown_cell(f"```{{note}}\n{note.strip()}\n```", id="book-note"))
    return copy


def figures_page() -> str:
    records = json.loads((FIGURES / "figures.json").read_text()) if (FIGURES / "figures.json").exists() else {}
    # The paper's figures (fig1_..., fig2_...) in their order first, then the others, alphabetically.
    names = sorted((path.stem for path in FIGURES.glob("*.png")), key=lambda name: (not name.startswith("fig"), name))
    sections = []
    for name in names:
        caption = records.get(name, "(no record of what produced it in figures/figures.json)")
        sections.append(f"## {name}\n\n```{{figure}} figures/{name}.png\n:alt: {name}\n:width: 100%\n\n"
                        f"{caption}\n```\n")
    return "\n".join(sections)


def stage(src: Path, parts: list[dict], chapters: dict[str, nbformat.NotebookNode]) -> None:
    """Write the Sphinx source folder: book pages, generated sections, chapter copies, figures."""
    written: set[Path] = set()
    notes = {entry["chapter"]: entry.get("note") for part in parts for entry in part["chapters"] if "chapter" in entry}
    titles = {stem: chapter_title(notebook, stem) for stem, notebook in chapters.items()}
    generated = {
        "index.md": "\n" + toctrees(parts),
        "figures.md": "\n" + figures_page(),
        "references.md": "".join(f"\n## {titles[stem]}\n\n{(BOOK / 'reading' / f'{stem}.md').read_text().strip()}\n"
                                 for stem in titles),
    }
    for page in PAGES:
        text = (BOOK / page).read_text() + generated.get(page, "")
        write_if_changed(src / page, text.encode(), written)
    for stem, notebook in chapters.items():
        copy = book_chapter(stem, notebook, notes[stem])
        write_if_changed(src / "chapters" / f"{stem}.ipynb", nbformat.writes(copy).encode(), written)
    for png in sorted(FIGURES.glob("*.png")):
        write_if_changed(src / "figures" / png.name, png.read_bytes(), written)
    for path in sorted(src.rglob("*"), reverse=True):  # what an earlier build staged and this one did not
        if path.is_file() and path not in written:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


# -- build and check ---------------------------------------------------------------------------------------

def run_sphinx(src: Path, html: Path, doctrees: Path, warnings_file: Path) -> None:
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1", "-d", str(doctrees),
               "-w", str(warnings_file), str(src), str(html)]
    code = subprocess.call(command, cwd=src)
    warnings = warnings_file.read_text().splitlines() if warnings_file.exists() else []
    fatal = [line for line in warnings if FATAL_WARNINGS.search(line)]
    if code:
        raise BookError(f"sphinx-build exited with {code}")
    if fatal:
        raise BookError("Sphinx reported lost content:\n  " + "\n  ".join(fatal))


def plain(text: str) -> str:
    """HTML text unescaped and with Sphinx's typographic quotes made plain again."""
    return html_lib.unescape(text).translate(str.maketrans("\u2018\u2019\u201c\u201d", "''\"\""))


def check_site(html: Path, parts: list[dict], chapters: dict[str, nbformat.NotebookNode]) -> None:
    """Every page is there; every chapter page has its title and as many images as its notebook."""
    problems = []
    index = (html / "index.html").read_text() if (html / "index.html").exists() else ""
    if not index:
        problems.append("index.html was not written")
    for part in parts:
        for entry in part["chapters"]:
            page = f"chapters/{entry['chapter']}.html" if "chapter" in entry else f"{entry['page']}.html"
            if not (html / page).exists():
                problems.append(f"{page} was not written")
            elif f'href="{page}' not in index:
                problems.append(f"index.html does not link to {page}")
    for stem, notebook in chapters.items():
        page = html / "chapters" / f"{stem}.html"
        if not page.exists():
            continue
        text = plain(page.read_text())
        title = plain(chapter_title(notebook, stem))
        if f"<h1>{title}" not in text:
            problems.append(f"{page.name} does not show its title {title!r}")
        images = len(re.findall(r"<img\b", text))
        if images < image_outputs(notebook):
            problems.append(f"{page.name} has {images} images, its notebook {image_outputs(notebook)}")
    if problems:
        raise BookError("; ".join(problems))


def build(output: Path = DEFAULT_OUTPUT) -> Path:
    """Build the book into output/html (staging in output/src); return the html folder. Raises BookError."""
    parts = read_toc()
    chapters = load_chapters(parts)
    src, html = output / "src", output / "html"
    stage(src, parts, chapters)
    run_sphinx(src, html, output / "doctrees", output / "warnings.txt")
    check_site(html, parts, chapters)
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="build folder: OUTPUT/html is the site (default: build/book)")
    parser.add_argument("--install", action="append", default=[], metavar="EXTRA", choices=("book", "browser"),
                        help="pip-install this extra's pins (constrained by requirements/lock.txt) where missing")
    parser.add_argument("--no-build", action="store_true", help="only install (with --install)")
    args = parser.parse_args(argv)
    for extra in args.install:
        if missing := missing_requirements(extra_requirements(extra)):
            install(missing)
    if args.no_build:
        return 0
    if missing := missing_requirements(extra_requirements("book")):
        print(f"build_book: error: the [book] extra is not installed ({' '.join(missing)}); "
              "run `make book` or `python tools/build_book.py --install book`", file=sys.stderr)
        return 1
    started = time.perf_counter()
    try:
        html = build(args.output.resolve())
    except BookError as error:
        print(f"build_book: error: {error}", file=sys.stderr)
        return 1
    print(f"build_book: {html} in {time.perf_counter() - started:.0f} s; open {html / 'index.html'} "
          f"or serve it: python -m http.server -d {html.relative_to(ROOT) if html.is_relative_to(ROOT) else html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
