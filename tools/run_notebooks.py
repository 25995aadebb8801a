"""`make demo`: execute the numbered notebooks in order and write the executed ``.ipynb`` beside each source.

The jupytext ``.py`` files are the source of truth; the executed notebooks are committed so readers see
figures and tables on a code host. Audio players are replaced by a short note before saving: the GTZAN clips
must never be committed, and an embedded player would do exactly that.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from genrelib.storage import machine_paths, neutral_paths

AUDIO_NOTE = "[audio player removed from the committed notebook: run it to listen]"


def strip_audio(notebook: nbformat.NotebookNode) -> int:
    """Replace outputs that carry audio (IPython.display.Audio, <audio> HTML) with a note; return how many."""
    removed = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            html = "".join(data.get("text/html", ""))
            if any(key.startswith("audio/") for key in data) or "<audio" in html:
                output["data"] = {"text/plain": AUDIO_NOTE}
                output.pop("metadata", None)
                removed += 1
            elif "application/vnd.jupyter.widget-view+json" in data:
                data.pop("application/vnd.jupyter.widget-view+json")  # widgets do not render offline
    notebook.metadata.pop("widgets", None)
    return removed


#: A tqdm bar's text: ``label:  37%|###7      | 37/100 [00:05<00:09, 6.8clip/s]``.
PROGRESS_BAR = re.compile(r"^[^\n]*\d+%\|[^\n]*\| *\d+/\d+ \[[^\n]*\]\s*$")


def drop_frozen_progress_bars(notebook: nbformat.NotebookNode) -> int:
    """Drop the progress bars a kernel drew as widgets; return how many.

    A saved notebook keeps a widget bar only as its text fallback, the bar's first frame ("0/100"), so a reader would
    see every long step as if it never ran. A bar written as text (a stream) shows its last frame and is kept.
    """
    dropped = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            rest = set(data) - {"text/plain", "application/vnd.jupyter.widget-view+json"}
            if output.get("output_type") == "display_data" and not rest and \
                    PROGRESS_BAR.match("".join(data.get("text/plain", ""))):
                dropped += 1
                continue
            kept.append(output)
        cell["outputs"] = kept
    return dropped


#: TensorFlow's native start-up log on a CPU machine (absl preamble, "failed call to cuInit", oneDNN notes):
#: the same lines in every notebook, and nothing a reader can act on.
NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                        r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] )")


def strip_native_log(notebook: nbformat.NotebookNode) -> int:
    """Drop TensorFlow's native log lines from stderr outputs (and outputs left empty); return lines dropped."""
    dropped = 0
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                lines = "".join(output["text"]).splitlines(keepends=True)
                text = [line for line in lines if not NATIVE_LOG.match(line)]
                dropped += len(lines) - len(text)
                if not text:
                    continue
                output["text"] = "".join(text)
            kept.append(output)
        if cell.cell_type == "code":
            cell["outputs"] = kept
    return dropped


def hide_machine_paths(notebook: nbformat.NotebookNode, replacements: dict[str, str]) -> None:
    """Replace this machine's folders in every output (text and rich data) by neutral names."""
    def scrub(value):
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return neutral_paths(value, replacements) if isinstance(value, str) else value

    def scrub_json(value):
        if isinstance(value, dict):
            return {key: scrub_json(item) for key, item in value.items()}
        return scrub(value)

    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for field in ("text", "evalue", "traceback"):  # streams, and an error's message and traceback
                if field in output:
                    output[field] = scrub(output[field])
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") or mime.endswith("json") or mime == "image/svg+xml":
                    output["data"][mime] = scrub_json(value)


def make_diffable(notebook: nbformat.NotebookNode, stem: str | None) -> None:
    """Cell ids from the notebook's name and position (unless ``stem`` is None), no execution timestamps: a re-run
    of ``make demo`` then changes only outputs that really changed."""
    for number, cell in enumerate(notebook.cells):
        if stem is not None:
            cell["id"] = f"{stem[:2]}-{number:03d}"
        cell.get("metadata", {}).pop("execution", None)


def clean(notebook: nbformat.NotebookNode, stem: str | None) -> int:
    """Everything done to an executed notebook before it is committed (here and by ``tools/nbfilter.py``, the git
    filter): no audio, no frozen widget progress bar, no TensorFlow native log, no path of this machine, no execution
    timestamps, and cell ids from ``stem`` and position (None keeps the ids); return how many audio outputs were
    removed."""
    drop_frozen_progress_bars(notebook)
    removed = strip_audio(notebook)
    strip_native_log(notebook)
    hide_machine_paths(notebook, machine_paths(Path(__file__).resolve().parents[1]))
    make_diffable(notebook, stem)
    return removed


def cell_seconds(notebook: nbformat.NotebookNode) -> list[dict]:
    """Seconds each code cell ran (nbclient's ``execution`` timestamps), with the cell's first source line."""
    from datetime import datetime

    rows = []
    for number, cell in enumerate(notebook.cells):
        stamps = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type != "code" or "iopub.execute_input" not in stamps or "shell.execute_reply" not in stamps:
            continue
        start, end = (datetime.fromisoformat(stamps[key].replace("Z", "+00:00"))
                      for key in ("iopub.execute_input", "shell.execute_reply"))
        first = next((line for line in cell.source.splitlines() if line.strip() and not line.startswith("#")), "")
        rows.append({"cell": number, "seconds": round((end - start).total_seconds(), 2), "source": first[:100]})
    return rows


def execute(source: Path, *, timeout: int, timings: list | None = None) -> Path:
    notebook = jupytext.read(source)
    notebook.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                                "language": "python"})
    started = time.time()
    # Over IPC (a local socket file) rather than TCP: the kernel then has no "running over TCP without encryption"
    # warning to print into make demo's output, and nothing listens on a port.
    with tempfile.TemporaryDirectory(prefix="nbk-") as sockets:  # absolute: the kernel runs in another folder
        kernel = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
        NotebookClient(notebook, km=kernel, timeout=timeout, kernel_name="python3", record_timing=True,
                       resources={"metadata": {"path": str(source.parent)}}).execute()
    if timings is not None:
        timings.extend({"notebook": source.name, **row} for row in cell_seconds(notebook))
    removed = clean(notebook, source.stem)
    target = source.with_suffix(".ipynb")
    jupytext.write(notebook, target, fmt="ipynb")
    print(f"{source.name}: executed in {time.time() - started:.0f} s, {removed} audio output(s) removed -> {target}")
    return target


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # fewer native lines for strip_native_log to drop
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--execute", action="store_true", help="execute (the only mode; kept for clarity)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--timings", type=Path, default=None, metavar="FILE.json",
                        help="write the seconds of every code cell (where `make demo` spends its time) and print "
                             "the ten slowest")
    args = parser.parse_args(argv)
    timings: list | None = [] if args.timings else None
    for source in args.notebooks:
        execute(source, timeout=args.timeout, timings=timings)
    if timings is not None:
        import json

        args.timings.parent.mkdir(parents=True, exist_ok=True)
        args.timings.write_text(json.dumps({"total_seconds": round(sum(r["seconds"] for r in timings), 1),
                                            "cells": timings}, indent=1) + "\n")
        for row in sorted(timings, key=lambda r: -r["seconds"])[:10]:
            print(f"{row['seconds']:8.1f} s  {row['notebook']} cell {row['cell']}: {row['source']}")
        print(f"timings: {args.timings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
