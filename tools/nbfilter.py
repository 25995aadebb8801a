"""Git clean filter for the executed notebooks: what is committed carries no audio and no path of this machine.

``make nbfilter`` registers it (``git config filter.genrelib-notebook.clean``); ``.gitattributes`` applies it to
``notebooks/*.ipynb``. On ``git add`` the notebook (JSON on stdin) goes through the rules ``make demo`` applies
(``tools/run_notebooks.py``): audio players replaced by a note (a GTZAN clip must never be committed, and a notebook
saved in JupyterLab embeds every clip it played), widget views dropped, TensorFlow's native log lines dropped, this
machine's folders named neutrally, no execution timestamps. The working copy is left as it
is; only what git stores is cleaned. A notebook ``make demo`` wrote passes through unchanged.

Usage: ``python tools/nbfilter.py NAME.ipynb < notebook.ipynb > cleaned.ipynb`` (git passes the name, ``%f``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jupytext  # noqa: E402
import nbformat  # noqa: E402

from run_notebooks import clean  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    text = sys.stdin.read()
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - not a notebook (e.g. a merge conflict): store it as it is
        print(f"nbfilter: {argv[0]}: not a notebook ({exc}); stored unchanged", file=sys.stderr)
        sys.stdout.write(text)
        return 0
    clean(notebook, None)  # ids kept: JupyterLab keeps a cell's id, and a renumbering would touch every later cell
    cleaned = jupytext.writes(notebook, fmt="ipynb")
    sys.stdout.write(cleaned if cleaned.endswith("\n") else cleaned + "\n")  # as jupytext.write() ends a file
    return 0


if __name__ == "__main__":
    sys.exit(main())
