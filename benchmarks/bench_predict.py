"""Benchmark: ``genrelib predict`` latency on one 30 s file, cold (process start -> answer) and warm (one more file).

- **cold**: ``python -m genrelib predict FILE --model RUN`` in a fresh process, from its start until it exits, the
  median of ``--repeats`` runs (each on another file, so no operating-system cache of one file favours a run).
  Beside it, the same process's phases (``--phases``: one more fresh process that times each step the CLI takes:
  interpreter + genrelib import, checking the inputs, TensorFlow and Keras import, loading the run and its
  backend, decoding the file, embedding it, the CNN) and the floor no change in genrelib moves: a process that
  only imports TensorFlow and Keras.
- **warm**: in one process that has loaded the classifier and predicted one file already (as a notebook has),
  the seconds :func:`genrelib.predict.predict_files` takes for one more 30 s file, the median over ``--repeats``
  files.

Writes the medians, every run's seconds, the machine, load average and commit to ``results/bench_predict.json``
(``--output``). Run it on an otherwise idle machine; the load average before each part is recorded.

Usage: ``python benchmarks/bench_predict.py --model RUN_DIR [--data DIR] [--repeats N] [--output FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import commit, cpu  # noqa: E402

#: Times each step of ``genrelib predict`` in a fresh process; prints one JSON object.
PHASES_SCRIPT = r"""
import json, sys, time
start = time.perf_counter()
marks = {}
def mark(name):
    marks[name] = time.perf_counter() - start - sum(marks.values())
import genrelib.audio, genrelib.cli, genrelib.predict, genrelib.train
mark("genrelib import")
path, run_dir = sys.argv[1], sys.argv[2]
genrelib.audio.info(path)
genrelib.train.load_run(run_dir)
mark("inputs checked")
import tensorflow, keras
mark("tensorflow + keras import")
classifier = genrelib.predict.load_classifier(run_dir)
mark("run + backend loaded")
backend = classifier.backend
y = genrelib.audio.load(path, sr=backend.sample_rate, min_duration=backend.patch_seconds)
mark("file decoded + resampled")
from genrelib.embed import embed_audio
embedding = embed_audio(y, sr=backend.sample_rate, backend=backend)
mark("embedded")
windows = genrelib.predict.window_patches(embedding, n_patches=classifier.n_patches, pad_mode=classifier.pad_mode)
classifier.model.predict(windows, verbose=0)
mark("CNN")
print(json.dumps(marks))
"""

FLOOR_SCRIPT = "import tensorflow, keras"


def wall_of(command: list[str]) -> tuple[float, str]:
    """Seconds ``command`` takes from start to exit, and its stdout (it must exit 0)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def cold(files: list[Path], run_dir: Path) -> list[float]:
    return [wall_of([sys.executable, "-m", "genrelib", "predict", str(f), "--model", str(run_dir)])[0]
            for f in files]


def warm(files: list[Path], run_dir: Path) -> list[float]:
    from genrelib.predict import load_classifier, predict_files

    classifier = load_classifier(run_dir)
    predict_files([files[0]], classifier=classifier)  # the first call traces the graphs, as a notebook's first
    seconds = []
    for path in files[1:]:
        start = time.perf_counter()
        predict_files([path], classifier=classifier)
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="a complete run directory (genrelib train)")
    parser.add_argument("--data", type=Path, default=None, help="GTZAN root (default: $GENRELIB_DATA)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "bench_predict.json")
    args = parser.parse_args(argv)

    from genrelib.data import load_gtzan
    from genrelib.storage import neutral_paths

    index = load_gtzan(args.data)
    files = [Path(p) for p in index.groupby("genre")["path"].first()][: args.repeats + 1]
    loads = {"before cold": os.getloadavg()[0]}
    floor = [wall_of([sys.executable, "-c", FLOOR_SCRIPT])[0] for _ in range(3)]
    cold_seconds = cold(files[: args.repeats], args.model)
    phases = json.loads(wall_of([sys.executable, "-c", PHASES_SCRIPT, str(files[0]), str(args.model)])[1])
    loads["before warm"] = os.getloadavg()[0]
    warm_seconds = warm(files, args.model)
    result = {
        "what": "genrelib predict on one 30 s GTZAN clip: cold = fresh process start to exit; warm = one more file "
                "in a process that has predicted one already",
        "model": str(args.model), "files": [str(f) for f in files],
        "cold_median_s": statistics.median(cold_seconds), "cold_s": cold_seconds,
        "warm_median_s": statistics.median(warm_seconds), "warm_s": warm_seconds,
        "cold_phases_s": phases,
        "tensorflow_keras_import_median_s": statistics.median(floor), "tensorflow_keras_import_s": floor,
        "machine": {"cpus": os.cpu_count(), "cpu": cpu(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_average_1min": loads},
        "commit": commit(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(neutral_paths(json.dumps(result, indent=2) + "\n"))  # no folder of this machine
    print(f"cold: median {result['cold_median_s']:.2f} s ({', '.join(f'{s:.2f}' for s in cold_seconds)}); "
          f"TensorFlow + Keras import alone {result['tensorflow_keras_import_median_s']:.2f} s")
    print("  phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    print(f"warm: median {result['warm_median_s']:.2f} s ({', '.join(f'{s:.2f}' for s in warm_seconds)})")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
