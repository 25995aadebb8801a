"""Regenerate committed result rows from an empty cache and compare them with the committed tables.

Usage: python tools/check_results.py [--protocols paper kfold] [--augmentation off|on|both] [--seeds 3] [--keep DIR]
       [--backend auto|yamnet|...] [--perturb SCALE --perturb-seed N]

For each protocol it trains the paper's CNN with and without augmentation (``genrelib.train.run_protocol``
through ``genrelib.pipeline``, the same calls as ``genrelib run``) on the data ``genrelib`` finds (``make``
points ``GENRELIB_DATA`` at the mini set), in a new, empty cache and runs folder, evaluates the groups with the
baseline, and compares every row it wrote to ``table3_accuracy``, ``table2_per_genre`` and ``per_run`` (JSON and
Markdown) with the committed row of the same key: everything counted from predictions must be equal, losses
within ``LOSS_TOLERANCE`` (another CPU rounds differently; measurements below). Exit status 1, with each differing
row, when any differs or is missing; the last line gives the largest loss difference. ``make check-results``
runs both protocols with and without augmentation (the paper protocol alone took
404 s on 2 cores); CI runs ``paper`` without augmentation, which needs no augmented audio and fits its time budget.

``--backend`` (default ``auto``, what CI and ``make check-results`` use: the committed musicnn-msd rows) retrains
the rows of another embedding backend, e.g. ``--backend yamnet`` for the YAMNet rows (its weights are converted from
the TF-Lite file into the empty cache first, as ``genrelib`` does on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("table3_accuracy", "table2_per_genre", "per_run")

def perturb_embeddings(paths, *, scale: float, seed: int) -> None:
    """Multiply every cached embedding by ``1 + scale * N(0, 1)`` (one draw per value, ``seed``), in place: how
    much one rounding more or less moves the results (``--perturb``)."""
    import numpy as np

    from genrelib.storage import atomic_save_npz

    rng = np.random.default_rng(seed)
    for path in sorted(set(map(str, paths))):
        with np.load(path) as stored:
            arrays = dict(stored)
        noise = 1 + scale * rng.standard_normal(arrays["embedding"].shape)
        arrays["embedding"] = (arrays["embedding"] * noise).astype(arrays["embedding"].dtype)
        atomic_save_npz(path, **arrays)


def regenerate(protocols: list[str], *, seeds: int, workdir: Path, augmentation: tuple[bool, ...] = (False, True),
               backend: str = "auto", perturb: float = 0.0, perturb_seed: int = 0) -> Path:
    """Train and evaluate every protocol with and/or without augmentation under ``workdir``, with the embedding
    ``backend`` (its track embeddings perturbed by ``perturb``, see :func:`perturb_embeddings`); return the results
    folder."""
    os.environ["GENRELIB_CACHE"] = str(workdir / "cache")
    from genrelib import pipeline, train
    from genrelib.config import Config

    results = workdir / "results"
    config = Config().replace(**{"train.n_seeds": seeds, "embed.backend": backend})
    tracks, facts, model = pipeline.load_tracks(backend=config.embed.backend, progress=False)
    if perturb:
        perturb_embeddings(tracks["embedding_path"], scale=perturb, seed=perturb_seed)
    augmenter = pipeline.make_augmenter(tracks, config=config, backend=model, progress=False)
    for protocol in protocols:
        for augment in augmentation:
            variant = config.replace(protocol=protocol, augment_training=augment)
            runs = train.run_protocol(tracks, config=variant, backend=model, runs_dir=workdir / "runs", data=facts,
                                      augmented_for=augmenter if augment else None, progress=False, jobs="auto")
            pipeline.evaluate_runs(runs, tracks, results_dir=results)
    return results


# Losses are sums of logs of soft-max outputs after 30 epochs of float32 training: another CPU's kernels round
# differently and move them. Measured on the committed musicnn-msd paper rows: an AVX-512 Xeon gave the same
# predictions and losses up to 0.0012 nats apart (paper CNN, seed 0; 2e-7 for the logistic regression). Capping
# oneDNN, OpenBLAS and numpy at AVX2 there (ONEDNN_MAX_CPU_ISA, OPENBLAS_CORETYPE, NPY_DISABLE_CPU_FEATURES) did
# not bring back the AVX2 machine's numbers: it changed seed 0's paper CNN from 0.96 to 1.00 (twice), so the check
# runs each CPU's own kernels. Cached
# embeddings times (1 + 1e-7 N(0, 1)), about one float32 rounding, three draws: same predictions, losses up to
# 0.0029 apart; times (1 + 1e-6 N(0, 1)), two draws: one within 0.0088, the other changed seed 1's accuracy from
# 0.96 to 0.80 (training on 75 clips is that sensitive). So counts from predictions (accuracy, precision, recall,
# F1, support) must be equal and a loss may move by LOSS_TOLERANCE, about three times one rounding's effect.
# (`--protocols paper --augmentation off --perturb 1e-7 --perturb-seed 1`, seeds 1-3; `--perturb 1e-6`, seeds 1-2.)
LOSS_TOLERANCE = 0.01
LOSS_FIELDS = ("loss", "loss_mean", "loss_std")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _loss_gaps(new: dict, old: dict) -> dict[str, float]:
    """|regenerated - committed| of each loss field that both rows hold as a number."""
    return {name: abs(new[name] - old[name]) for name in LOSS_FIELDS
            if isinstance(new.get(name), (int, float)) and isinstance(old.get(name), (int, float))}


def _row_problems(new: dict, old: dict | None) -> list[str]:
    """Why a regenerated JSON row is not the committed one: missing, a field not equal, or a loss too far."""
    if old is None:
        return ["not committed"]
    gaps, problems = _loss_gaps(new, old), []
    for name in sorted(set(new) | set(old)):
        a, b = new.get(name), old.get(name)
        if name in gaps:
            if gaps[name] > LOSS_TOLERANCE:
                problems.append(f"{name} {a} vs {b} (more than {LOSS_TOLERANCE} apart)")
        elif a != b:
            problems.append(f"{name} {a!r} vs {b!r}")
    return problems


def _markdown_rows(text: str) -> list[dict]:
    """Every row of every Markdown table in ``text``, as {column header: cell}."""
    rows, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if header is None:
            header = cells
        elif not line.startswith("|---"):
            rows.append(dict(zip(header, cells)))
    return rows


def _same_markdown_row(new: dict, old: dict) -> bool:
    """Equal cells, except that loss cells ("0.1819 ± 0.0627") may differ by LOSS_TOLERANCE per number."""
    if new.keys() != old.keys():
        return False
    for column, a in new.items():
        b = old[column]
        if "loss" in column and column != "loss (paper)":
            numbers_a, numbers_b = _NUMBER.findall(a), _NUMBER.findall(b)
            if len(numbers_a) != len(numbers_b) or _NUMBER.sub("#", a) != _NUMBER.sub("#", b) or any(
                    abs(float(x) - float(y)) > LOSS_TOLERANCE for x, y in zip(numbers_a, numbers_b)):
                return False
        elif a != b:
            return False
    return True


def differences(regenerated: Path, committed: Path) -> tuple[list[str], float]:
    """Every regenerated row (JSON) or line (Markdown) that the committed tables do not hold (losses within
    ``LOSS_TOLERANCE``, everything else equal), and the largest loss difference seen in the JSON rows."""
    found, largest = [], 0.0
    for stem in TABLES:
        new = json.loads((regenerated / f"{stem}.json").read_text())["rows"]
        old = json.loads((committed / f"{stem}.json").read_text())["rows"]
        key_names = [k for k in ("model", "data", "protocol", "backend", "augmentation", "genre", "run") if k in new[0]]
        by_key = {tuple(row[k] for k in key_names): row for row in old}
        for row in new:
            key = tuple(row[k] for k in key_names)
            old_row = by_key.get(key)
            problems = _row_problems(row, old_row)
            if problems:
                found.append(f"{stem}.json {dict(zip(key_names, key))}: {'; '.join(problems)}")
            elif old_row is not None:
                largest = max([largest, *_loss_gaps(row, old_row).values()])
        committed_rows = _markdown_rows((committed / f"{stem}.md").read_text())
        for row in _markdown_rows((regenerated / f"{stem}.md").read_text()):
            if not any(_same_markdown_row(row, old_row) for old_row in committed_rows):
                found.append(f"{stem}.md: regenerated row not committed: {' | '.join(row.values())}")
    return found, largest


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
    parser.add_argument("--perturb", type=float, default=0.0, metavar="SCALE",
                        help="multiply the track embeddings by 1 + SCALE N(0, 1) before training (the measurement "
                             "behind LOSS_TOLERANCE: 1e-7 is about one float32 rounding)")
    parser.add_argument("--perturb-seed", type=int, default=0, help="seed of --perturb's noise (default 0)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="genrelib-check-") as scratch:
        workdir = args.keep or Path(scratch)
        augmentation = {"off": (False,), "on": (True,), "both": (False, True)}[args.augmentation]
        regenerated = regenerate(args.protocols, seeds=args.seeds, workdir=workdir, augmentation=augmentation,
                                 backend=args.backend, perturb=args.perturb, perturb_seed=args.perturb_seed)
        found, largest = differences(regenerated, args.committed)
    seconds = time.perf_counter() - started
    for line in found:
        print(line)
    what = (f"protocols {', '.join(args.protocols)} x augmentation {args.augmentation.replace('both', 'off/on')}, "
            f"{args.seeds} seed(s), backend {args.backend}, empty cache"
            f"{f', embeddings perturbed by {args.perturb:g} (seed {args.perturb_seed})' if args.perturb else ''}; "
            f"largest loss difference of the matching rows {largest:.2g} nats, "
            f"tolerance {LOSS_TOLERANCE}")
    if found:
        print(f"check-results: {what}: {len(found)} row(s) differ from the committed tables ({seconds:.0f} s)")
        print("check-results: on a CPU other than the one that made them, the augmented and k-fold rows differ beyond "
              "rounding (README.md, 'make check-results'); the paper rows without augmentation reproduced on both "
              "CPUs measured (AMD EPYC AVX2, Intel Xeon AVX-512)")
    else:
        print(f"check-results: {what}: every row reproduces the committed tables ({seconds:.0f} s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
