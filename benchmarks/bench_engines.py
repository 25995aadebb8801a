"""Ray against one process end to end, as a user runs them: ``genrelib embed --engine local`` and ``--engine ray``
(a private local Ray cluster of this machine's CPUs), each a fresh process from start to exit.

    python benchmarks/bench_engines.py [--data DIR] [--backend musicnn-msd] [--clips 100] [--repeats 2]

Every run gets an empty output folder and an empty genrelib cache (the backend's converted weights copied in, so
neither engine pays the one-time conversion). Per engine it runs the whole set of clips and a single clip, taking
turns, and reports the medians: the wall clock of each, Ray's overhead against one process (``ray / local - 1``),
each engine's fixed cost (the one-clip run: interpreter, imports, Ray's start, actor and model start) and its rate
beyond it (``(clips - 1) / (T_clips - T_1)``), and from that straight-line model the number of clips from which
Ray's overhead stays under 10 % on this machine. Writes ``results/bench_engines_<backend>.json``.

Not a test: timings depend on the machine; run it on an otherwise idle one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import provenance  # noqa: E402
from benchmarks.bench_scale import pick_clips  # noqa: E402
from genrelib import data  # noqa: E402
from genrelib.storage import cache_dir, neutral_paths  # noqa: E402

ENGINES = ("local", "ray")
OVERHEAD_TARGET = 0.10


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="GTZAN root (default: $GENRELIB_DATA, ...)")
    parser.add_argument("--backend", default="musicnn-msd")
    parser.add_argument("--clips", type=int, default=100, help="clips of the long run (genres in turn)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per engine and size, taking turns")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON file (default results/bench_engines_<backend>.json)")
    return parser.parse_args(argv)


def run_cli(engine: str, backend: str, files: list[str], scratch: Path) -> float:
    """Seconds from the start of ``genrelib embed --engine ENGINE`` to its exit, on an empty cache and output."""
    run = Path(tempfile.mkdtemp(prefix=f"{engine}-", dir=scratch))
    shutil.copytree(cache_dir("weights"), run / "cache" / "weights")
    command = [sys.executable, "-m", "genrelib", "embed", "--backend", backend, "--engine", engine, "--quiet",
               "--output-dir", str(run / "out"), *files]
    environment = {**os.environ, "GENRELIB_CACHE": str(run / "cache")}
    environment.pop("RAY_ADDRESS", None)  # the local cluster, whatever this shell points at
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"genrelib embed --engine {engine} exited {done.returncode}:\n{done.stderr[-2000:]}")
    shutil.rmtree(run, ignore_errors=True)
    return seconds


def straight_line(one: float, many: float, clips: int) -> tuple[float, float]:
    """(fixed seconds, seconds per clip beyond the first) through the one-clip and the ``clips``-clip runs."""
    per_clip = (many - one) / (clips - 1)
    return one - per_clip, per_clip


def clips_for_target(local: tuple[float, float], ray: tuple[float, float], target: float) -> int | None:
    """Fewest clips with ``ray <= (1 + target) * local`` on the straight lines; None if the rates never allow it."""
    (fixed_local, rate_local), (fixed_ray, rate_ray) = local, ray
    slack = (1 + target) * rate_local - rate_ray
    gap = fixed_ray - (1 + target) * fixed_local
    if gap <= 0:
        return 1
    return None if slack <= 0 else int(-(-gap // slack))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.clips < 2:
        raise SystemExit("--clips must be at least 2 (the long run against the one-clip run)")
    root = data.resolve_root(args.data)[0]
    files = [str(p) for p in pick_clips(root, args.clips)["path"]]
    if not cache_dir("weights").is_dir():
        raise SystemExit(f"{cache_dir('weights')}: no converted weights yet; run `genrelib embed --backend "
                         f"{args.backend}` on one file first")
    seconds: dict[str, dict[str, list[float]]] = {e: {"all": [], "one": []} for e in ENGINES}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="genrelib-bench-engines-") as scratch:
        for _ in range(args.repeats):
            for size, chosen in (("all", files), ("one", files[:1])):
                for engine in ENGINES:
                    seconds[engine][size].append(run_cli(engine, args.backend, chosen, Path(scratch)))
                    print(f"{engine:5s} {len(chosen):4d} clips: {seconds[engine][size][-1]:.1f} s", flush=True)
    median = {e: {size: statistics.median(v) for size, v in sizes.items()} for e, sizes in seconds.items()}
    lines = {e: straight_line(median[e]["one"], median[e]["all"], len(files)) for e in ENGINES}
    needed = clips_for_target(lines["local"], lines["ray"], OVERHEAD_TARGET)
    result = {
        "what": "genrelib embed end to end in a fresh process (empty cache and output): --engine local vs --engine "
                "ray on a local Ray cluster of this machine's CPUs",
        "backend": args.backend, "clips": len(files), "repeats": args.repeats,
        "data": {"root": neutral_paths(str(root))},
        "seconds": seconds, "median_seconds": median,
        "ray_overhead": median["ray"]["all"] / median["local"]["all"] - 1,
        "fixed_seconds": {e: lines[e][0] for e in ENGINES},
        "seconds_per_clip_beyond_fixed": {e: lines[e][1] for e in ENGINES},
        "ray_overhead_beyond_fixed": lines["ray"][1] / lines["local"][1] - 1,
        "clips_for_overhead_at_most_10_percent": needed,
        **provenance.stamp(load_before=load_before),
    }
    output = args.output or ROOT / "results" / f"bench_engines_{args.backend}.json"
    provenance.write_json(output, result)
    print(f"{len(files)} clips, {args.backend}: one process {median['local']['all']:.1f} s, Ray "
          f"{median['ray']['all']:.1f} s (overhead {result['ray_overhead']:+.0%}); fixed cost "
          f"{lines['local'][0]:.1f} s vs {lines['ray'][0]:.1f} s; beyond it {lines['local'][1]:.3f} vs {lines['ray'][1]:.3f} s per clip "
          f"({result['ray_overhead_beyond_fixed']:+.0%}); Ray within 10 % from "
          + (f"{needed} clips" if needed else "no number of clips (its rate is over 10 % slower)"))
    print(f"written: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
