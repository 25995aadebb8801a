"""Which embedding dimensions the CNN's variance floor lifts: writes results/embedding_variance.{md,json}.

Usage::

    python tools/embedding_variance.py [--data GTZAN_ROOT] [--backends musicnn-msd musicnn-mtt mfcc yamnet]

For each backend, over the training tracks of every paper and k-fold split of seeds 0-2 (what the CNN's
``Normalization`` layer adapts to): the least varying dimension's variance as a fraction of the mean variance
over dimensions, and how many dimensions fall under ``ModelConfig.variance_floor`` (so would be floored).
Embeddings come from ``embed.embed_dataset`` (cached per clip under $GENRELIB_CACHE).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def training_sides(index, *, seeds):
    """Track ids of the training side of every paper and k-fold split of the given seeds."""
    from genrelib import train

    for protocol in ("paper", "kfold"):
        for seed in seeds:
            for split in train.make_splits(index, protocol=protocol, seed=seed):
                yield f"{protocol} seed {seed}", set(split.train)


def floor_summary(patches_by_track: dict[str, np.ndarray], sides, *, floor: float) -> dict:
    """Smallest variance / mean variance over every training side, and the most dimensions floored (by the
    model's own rule, :func:`genrelib.model.floored_variance`)."""
    from genrelib.model import floored_variance

    ratios, floored = [], []
    for _, tracks in sides:
        pooled = np.concatenate([patches_by_track[t] for t in sorted(tracks)])
        variance = pooled.astype(np.float32).var(axis=0)
        ratios.append(float(variance.min() / variance.mean()))
        floored.append(int((floored_variance(variance, variance_floor=floor) != variance).sum()))
    return {"smallest_ratio": min(ratios), "most_floored": max(floored), "sides": len(ratios)}


def main(argv=None) -> int:
    from genrelib import data, embed
    from genrelib.config import ModelConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--backends", nargs="+", default=["musicnn-msd", "musicnn-mtt", "mfcc", "yamnet"])
    parser.add_argument("--output-dir", type=Path, default=ROOT / "results")
    args = parser.parse_args(argv)
    root, _ = data.resolve_root(args.data)
    index = data.load_gtzan(root)
    floor = ModelConfig().variance_floor
    sides = list(training_sides(index, seeds=(0, 1, 2)))
    rows = []
    for backend in args.backends:
        table = embed.embed_dataset(index, backend=backend, progress=False)
        patches = {str(t): np.load(p)["embedding"] for t, p in zip(table["track_id"], table["embedding_path"])}
        dim = next(iter(patches.values())).shape[1]
        rows.append({"backend": backend, "dim": dim, **floor_summary(patches, sides, floor=floor)})
        print(f"{backend}: {dim} dims, smallest variance / mean variance {rows[-1]['smallest_ratio']:.3g}, "
              f"at most {rows[-1]['most_floored']} dims floored at {floor}")
    report = {"data": f"{Path(root).name} ({len(index)} tracks)",
              "variance_floor": floor, "training_sides": [name for name, _ in sides], "rows": rows,
              "command": "python tools/embedding_variance.py"}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "embedding_variance.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Embedding dimensions the CNN's variance floor lifts", "",
             f"Training sides: paper and 5-fold splits of seeds 0-2 ({len(sides)} sides, "
             f"{len(index)} tracks); floor `model.variance_floor` = {floor} of the mean variance over dimensions.",
             f"Command: `{report['command']}`.", "",
             "| backend | dims | smallest variance / mean variance | dims floored (most over sides) |",
             "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['backend']} | {r['dim']} | {r['smallest_ratio']:.3g} | {r['most_floored']} |" for r in rows]
    (args.output_dir / "embedding_variance.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
