"""Training a protocol's runs one by one against side by side (``run_protocol(jobs=...)``) on real embeddings.

    python benchmarks/bench_jobs.py [--data DIR] [--backend musicnn-msd] [--protocol kfold] [--seeds 1]
                                    [--augment] [--jobs 1 2] [--repeats 2]

Embeds the data first (cached; not timed), then trains every run of the protocol into a new, empty runs folder for
each number of workers, taking turns, and reports the median wall seconds of each, the speed-up against one
worker, and whether every run's predictions are byte-equal across them (they must be: the same seed gives the same
run in any process). Each worker's TensorFlow import is inside the timing. Writes
``results/bench_jobs_<backend>.json``.

Not a test: timings depend on the machine; run it on an otherwise idle one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import provenance  # noqa: E402
from genrelib.storage import neutral_paths  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data root (default: $GENRELIB_DATA, ...)")
    parser.add_argument("--backend", default="musicnn-msd")
    parser.add_argument("--protocol", default="kfold")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--augment", action="store_true", help="train on augmented copies too (made first)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2, help="runs per number of workers, taking turns")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON file (default results/bench_jobs_<backend>.json)")
    return parser.parse_args(argv)


def predictions_of(runs: list[Path]) -> list[bytes]:
    return [(run / "predictions.csv").read_bytes() for run in runs]


def main(argv=None) -> int:
    args = parse_args(argv)
    from genrelib import pipeline, train
    from genrelib.config import Config

    config = Config(protocol=args.protocol, augment_training=args.augment).replace(**{
        "embed.backend": args.backend, "train.n_seeds": args.seeds})
    tracks, facts, model = pipeline.load_tracks(args.data, backend=args.backend, progress=False)
    augmenter = pipeline.make_augmenter(tracks, config=config, backend=model, progress=False) if args.augment \
        else None
    seconds: dict[int, list[float]] = {jobs: [] for jobs in args.jobs}
    outputs: dict[int, list[bytes]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="genrelib-bench-jobs-") as scratch:
        for repeat in range(args.repeats):
            for jobs in args.jobs:
                started = time.perf_counter()
                runs = train.run_protocol(tracks, config=config, backend=model, augmented_for=augmenter, data=facts,
                                          runs_dir=Path(scratch) / f"{repeat}-{jobs}", jobs=jobs, progress=False)
                seconds[jobs].append(time.perf_counter() - started)
                outputs.setdefault(jobs, predictions_of(runs))
                print(f"{jobs} worker(s): {len(runs)} runs in {seconds[jobs][-1]:.1f} s", flush=True)
    median = {jobs: statistics.median(values) for jobs, values in seconds.items()}
    first = args.jobs[0]
    result = {
        "what": "train.run_protocol of every run of the protocol into an empty runs folder, by number of worker "
                "processes (1: in this process), taking turns",
        "backend": args.backend, "protocol": args.protocol, "seeds": args.seeds, "augmented": args.augment,
        "runs": len(runs), "data": {"root": neutral_paths(str(facts.get("root", ""))), "tracks": len(tracks)},
        "repeats": args.repeats, "seconds": seconds, "median_seconds": median,
        "speedup": {jobs: median[first] / median[jobs] for jobs in args.jobs},
        "predictions_equal": all(outputs[jobs] == outputs[first] for jobs in args.jobs),
        **provenance.stamp(load_before=load_before),
    }
    output = args.output or ROOT / "results" / f"bench_jobs_{args.backend}.json"
    provenance.write_json(output, result)
    print(f"{len(runs)} runs of {args.protocol}, {args.backend}: "
          + ", ".join(f"{jobs} worker(s) {median[jobs]:.1f} s ({result['speedup'][jobs]:.2f}x)" for jobs in args.jobs)
          + f"; predictions equal: {result['predictions_equal']}")
    print(f"written: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
