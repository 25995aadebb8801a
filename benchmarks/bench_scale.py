"""Throughput of the embedding step: embed_dataset (one process) vs Ray Data with 1 and 2 model workers.

Same real clips, one run, one machine: clips/s and patches/s per engine (the engines take turns, ``--repeats``
times; medians), Ray's start-up time and the fixed cost of a Ray job, and a *projection* for FMA-large (106 574
clips of 30 s) on N nodes. Writes ``results/bench_scale_<backend>.json`` (under ``$GENRELIB_OUTPUT`` when set)
and prints the tables.

    python benchmarks/bench_scale.py [--data DIR] [--clips 20] [--backend auto] [--workers 1 2] [--repeats 3]
    python benchmarks/bench_scale.py --clips 100 --backend vggish --backend-option weights=random

Not a test: timings depend on the machine. Notebook 07 shows the same measurement on fewer clips.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pandas as pd  # noqa: E402

from genrelib import data, scale  # noqa: E402
from genrelib.storage import atomic_write_bytes, neutral_paths, output_dir  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="GTZAN root (default: $GENRELIB_DATA, ...)")
    parser.add_argument("--clips", type=int, default=20, help="clips to embed per run (one per genre in turn)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE",
                        help="backend factory option, e.g. weights=random (VGGish's cost without its weights)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine, taking turns; medians reported")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--cpus-per-node", type=int, default=16, help="for the projection")
    return parser.parse_args(argv)


def pick_clips(root, n_clips: int) -> pd.DataFrame:
    """``n_clips`` tracks taking genres in turn, so every run sees the same mix."""
    index = data.load_gtzan(root)
    index["rank"] = index.groupby("genre").cumcount()
    return index.sort_values(["rank", "genre"]).head(n_clips).drop(columns="rank").reset_index(drop=True)


def backend_options(pairs: list[str]) -> dict:
    """``["weights=random", "batch_size=32"]`` -> ``{"weights": "random", "batch_size": 32}``."""
    options = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dictionaries, NaN as null (strict JSON)."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def main(argv=None) -> int:
    args = parse_args(argv)
    options = backend_options(args.backend_option)
    root, source = data.resolve_root(args.data)
    clips = pick_clips(root, args.clips)
    costs = scale.stage_costs(clips, backend=args.backend, n_clips=min(5, len(clips)), backend_options=options)
    print(f"data: {root} ({source}), {len(clips)} clips, backend {costs.attrs['backend']} {options or ''}\n")
    print("Per-clip cost of each stage, one process:\n" + costs.to_string(index=False, float_format="%.4f") + "\n")
    table = scale.measure_throughput(clips, backend=args.backend, workers=args.workers, num_cpus=args.num_cpus,
                                     repeats=args.repeats, backend_options=options)
    attrs = table.attrs
    print(f"Throughput (same {len(clips)} clips, {attrs['cluster_cpus']:g} CPUs, backend {attrs['backend']}, "
          f"median of {attrs['repeats']} runs taking turns; 1-min load average before/after: "
          f"{attrs['load_average'][0]:.1f}/{attrs['load_average'][1]:.1f}):")
    print(table.to_string(index=False, float_format="%.2f"))
    print(f"Ray start-up: {attrs['ray_start_seconds']:.1f} s; fixed cost of one Ray job (1 clip): "
          f"{attrs['job_overhead_seconds']:.1f} s\n")
    best = table.sort_values("patches_per_s").iloc[-1]
    projection = scale.project_catalogue(
        cpu_seconds_per_patch=attrs["cluster_cpus"] / best["patches_per_s"],
        decode_cpu_seconds_per_clip=costs.set_index("stage").loc[["sha256", "decode + resample"],
                                                                 "seconds_per_clip"].sum(),
        patches_per_clip=costs.attrs["patches_per_clip"], cpus_per_node=args.cpus_per_node,
        job_overhead_seconds=(attrs["ray_start_seconds"] or 0) + attrs["job_overhead_seconds"])
    print(f"PROJECTION (not measured) for {scale.FMA_LARGE['name']}: {projection.attrs['n_clips']} clips, "
          f"{projection.attrs['patches']:.3g} patches, nodes of {args.cpus_per_node} CPUs, linear scaling from "
          f"the fastest run above ({best['engine']}, {best['workers']} worker(s), {best['patches_per_s']:.0f} "
          f"patches/s on {attrs['cluster_cpus']:g} CPUs) plus Ray's start-up and job cost once:")
    print(projection.to_string(index=False, float_format="%.2f"))
    report = {
        "machine": {"platform": platform.platform(), "cpus_visible": os.cpu_count(), "ray_cpus": attrs["cluster_cpus"]},
        "data": {"root": str(root), "source": source, "clips": len(clips)},
        "backend": attrs["backend"], "backend_options": options,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "stage_costs": records(costs), "throughput": records(table),
        "ray_start_seconds": attrs["ray_start_seconds"], "job_overhead_seconds": attrs["job_overhead_seconds"],
        "repeats": attrs["repeats"], "load_average_before_after": attrs["load_average"],
        "projection_fma_large": records(projection),
    }
    path = output_dir("results") / f"bench_scale_{attrs['backend']}.json"
    atomic_write_bytes(path, neutral_paths(json.dumps(report, indent=2, default=float, allow_nan=False) + "\n").encode())
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
