"""Regenerate committed result rows from an empty cache and compare them with the committed tables.

Usage: python tools/check_results.py [--protocols paper kfold] [--augmentation off|on|both] [--seeds 3] [--keep DIR]
       [--backend auto|yamnet|...]

For each protocol it trains the paper's CNN with and without augmentation (``genrelib.train.run_protocol``
through ``genrelib.pipeline``, the same calls as ``genrelib run``) on the data ``genrelib`` finds (``make``
points ``GENRELIB_DATA`` at the mini set), in a new, empty cache and runs folder, evaluates the groups with the
baseline, and compares every row it wrote to ``table3_accuracy``, ``table2_per_genre`` and ``per_run`` (JSON and
Markdown) with the committed row of the same key. Exit status 1, with each differing row, when any differs or is
missing. ``make check-results`` runs both protocols with and without augmentation (the paper protocol alone took
404 s on 2 cores); CI runs ``paper`` without augmentation, which needs no augmented audio and fits its time budget.

``--backend`` (default ``auto``, what CI and ``make check-results`` use: the committed musicnn-msd rows) retrains
the rows of another embedding backend, e.g. ``--backend yamnet`` for the YAMNet rows (its weights are converted from
the TF-Lite file into the empty cache first, as ``genrelib`` does on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("table3_accuracy", "table2_per_genre", "per_run")


def regenerate(protocols: list[str], *, seeds: int, workdir: Path, augmentation: tuple[bool, ...] = (False, True),
               backend: str = "auto") -> Path:
    """Train and evaluate every protocol with and/or without augmentation under ``workdir``, with the embedding
    ``backend``; return the results folder."""
    os.environ["GENRELIB_CACHE"] = str(workdir / "cache")
    from genrelib import pipeline, train
    from genrelib.config import Config

    results = workdir / "results"
    config = Config().replace(**{"train.n_seeds": seeds, "embed.backend": backend})
    tracks, facts, model = pipeline.load_tracks(backend=config.embed.backend, progress=False)
    augmenter = pipeline.make_augmenter(tracks, config=config, backend=model, progress=False)
    for protocol in protocols:
        for augment in augmentation:
            variant = config.replace(protocol=protocol, augment_training=augment)
            runs = train.run_protocol(tracks, config=variant, backend=model, runs_dir=workdir / "runs", data=facts,
                                      augmented_for=augmenter if augment else None, progress=False)
            pipeline.evaluate_runs(runs, tracks, results_dir=results)
    return results


def differences(regenerated: Path, committed: Path) -> list[str]:
    """Every regenerated row (JSON) or line (Markdown) that the committed table does not hold as it is."""
    found = []
    for stem in TABLES:
        new = json.loads((regenerated / f"{stem}.json").read_text())["rows"]
        old = json.loads((committed / f"{stem}.json").read_text())["rows"]
        key_names = [k for k in ("model", "data", "protocol", "backend", "augmentation", "genre", "run") if k in new[0]]
        by_key = {tuple(row[k] for k in key_names): row for row in old}
        for row in new:
            key = tuple(row[k] for k in key_names)
            if by_key.get(key) != row:
                found.append(f"{stem}.json {dict(zip(key_names, key))}: regenerated {row}, committed {by_key.get(key)}")
        committed_lines = set((committed / f"{stem}.md").read_text().splitlines())
        for line in (regenerated / f"{stem}.md").read_text().splitlines():
            if line.startswith("| ") and line not in committed_lines and not line.startswith("| model "):
                found.append(f"{stem}.md: regenerated line not committed: {line}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", nargs="+", default=["paper", "kfold"])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per protocol, as committed (default 3)")
    parser.add_argument("--committed", type=Path, default=ROOT / "results")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    parser.add_argument("--augmentation", choices=("off", "on", "both"), default="both",
                        help="which rows to retrain (CI: off; on: augments and embeds the training tracks first)")
    parser.add_argument("--backend", default="auto",
                        help="embedding backend of the rows to retrain (default: auto, the committed musicnn-msd rows)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="genrelib-check-") as scratch:
        workdir = args.keep or Path(scratch)
        augmentation = {"off": (False,), "on": (True,), "both": (False, True)}[args.augmentation]
        regenerated = regenerate(args.protocols, seeds=args.seeds, workdir=workdir, augmentation=augmentation,
                                 backend=args.backend)
        found = differences(regenerated, args.committed)
    seconds = time.perf_counter() - started
    for line in found:
        print(line)
    what = (f"protocols {', '.join(args.protocols)} x augmentation {args.augmentation.replace('both', 'off/on')}, "
            f"{args.seeds} seed(s), backend {args.backend}, empty cache")
    if found:
        print(f"check-results: {what}: {len(found)} row(s) differ from the committed tables ({seconds:.0f} s)")
    else:
        print(f"check-results: {what}: every row reproduces the committed tables ({seconds:.0f} s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
