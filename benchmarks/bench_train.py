"""Training time of the paper's CNN for one run (a speed target, not a test).

    python benchmarks/bench_train.py                 # both shapes below, Table 1 (30 epochs, batch 32)
    python benchmarks/bench_train.py --epochs 10

Shapes (random data: the cost does not depend on the values):

- ``mini-musicnn``: one fold of the mini set with augmentation - 280 training clips (70 tracks x 4) of
  10 x 200 (musicnn-msd), 10 validation clips. Target: <= 15 s of wall time on 2 CPU cores, so the
  5-fold x 3-seed protocol (15 runs) trains in under 4 minutes (measured: 6.9 s).
- ``full-vggish``: the paper protocol on full GTZAN with augmentation - 2 600 training clips (650 tracks
  x 4) of 31 x 128 (VGGish), 100 validation clips. Target: <= 60 s per run on 2 CPU cores (measured: 13 s).

Prints wall seconds, CPU seconds (user + system of this process, which other processes on the machine do
not inflate) and seconds per epoch.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SHAPES = {"mini-musicnn": (280, 10, 10, 200, 15.0), "full-vggish": (2600, 100, 31, 128, 60.0)}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)

    from genrelib.config import Config
    from genrelib.train import fit_classifier

    config = Config().replace(**{"train.epochs": args.epochs})
    failed = False
    for name in args.shapes:
        n_train, n_valid, n_patches, dim, target = SHAPES[name]
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n_train + n_valid, n_patches, dim)).astype(np.float32)
        y = rng.integers(0, 10, n_train + n_valid)
        wall, cpu = time.perf_counter(), cpu_seconds()
        fit_classifier(x[:n_train], y[:n_train], x_valid=x[n_train:], y_valid=y[n_train:], config=config, seed=0)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        target = target * args.epochs / 30
        verdict = "ok" if wall <= target else "SLOWER THAN TARGET"
        failed |= wall > target
        print(f"{name}: {n_train} clips of {n_patches} x {dim}, {args.epochs} epochs: {wall:.1f} s wall "
              f"({wall / args.epochs:.2f} s/epoch), {cpu:.1f} s CPU; target <= {target:.0f} s: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
