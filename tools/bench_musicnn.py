"""Speed and memory of the musicnn backends: embed every clip of a GTZAN folder, cold embedding cache.

Usage::

    python tools/bench_musicnn.py [--data GTZAN_ROOT] [--backends musicnn-msd vgg-msd ...]

Each backend runs in its own process (so peak RSS is its own) through ``embed.embed_dataset`` with an
empty temporary embedding cache: decoding, resampling to 16 kHz, log-mel and network included. The
converted weights may come from the weight cache; model loading is timed separately. Prints one line
per backend: clips/s, audio seconds per wall second, CPU seconds per clip (all threads; less sensitive
to other load on the machine than wall time), peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("musicnn-msd", "musicnn-mtt", "vgg-msd", "vgg-mtt")


def measure(backend_name: str, data: str | None) -> dict:
    sys.path.insert(0, str(ROOT))
    from genrelib import data as gtzan
    from genrelib import embed

    index = gtzan.load_gtzan(data)
    started = time.perf_counter()
    backend = embed.get_backend(backend_name)
    backend.embed(gtzan_first_second(index))  # loads the network and traces its predict function
    load_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as cache:
        started, cpu_started = time.perf_counter(), time.process_time()
        embed.embed_dataset(index, backend=backend, cache_dir_=cache, progress=False)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"backend": backend_name, "clips": len(index), "audio_seconds": float(index["duration"].sum()),
            "load_seconds": load_seconds, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def gtzan_first_second(index):
    from genrelib import audio

    return audio.load(index["path"].iloc[0], sr=16000)[:16000]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="GTZAN root (default: $GENRELIB_DATA)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.data)))
        return 0
    for name in args.backends:
        command = [sys.executable, __file__, "--child", name] + (["--data", args.data] if args.data else [])
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        print(f"{name:12s} {result['clips']} clips in {result['seconds']:.1f} s: "
              f"{result['clips'] / result['seconds']:.2f} clips/s, "
              f"{result['audio_seconds'] / result['seconds']:.0f}x real time, "
              f"{result['cpu_seconds'] / result['clips']:.2f} CPU-s/clip; model load {result['load_seconds']:.1f} s; "
              f"peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
