"""Embedding throughput against this machine's own dense matmul speed (a speed target, not a test).

    python benchmarks/bench_embed.py                        # VGGish, 40 real clips, 3 rounds
    python benchmarks/bench_embed.py --backends vggish musicnn-msd mfcc --clips 20
    python benchmarks/bench_embed.py --batch-sizes 32 64 128 --engines plain xla   # compare engines

Each round measures, back to back, (a) dense float32 ``tf.matmul`` GFLOP/s (best of 2048^2 and 4096^2)
and (b) ``genrelib.embed.embed_dataset`` end to end on real clips - hash, decode, resample, front end,
model, atomic ``.npz`` writes - into an empty cache, after a warm-up that compiles every batch shape.
For VGGish it prints

    ratio = patches/s x 1.728 GFLOP / matmul GFLOP/s        (target >= 0.9 on 2 CPU cores)

1.728 GFLOP is one VGGish forward pass of one 0.96 s patch (2 x 864 M multiply-adds). Alongside the
wall-clock ratio it prints the same ratio per CPU-second (user + system time of this process), which
other processes competing for the cores do not distort; and the model alone on ready-made patches,
which shows what decoding and the front end cost. For the other backends (musicnn, YAMNet) the reference is
the backend on one clip already decoded in memory (front end + model), and the ratio end to end / that. Real
VGGish weights are not needed: random weights have the same FLOPs (the output says which weights were used).
Peak RSS closes the report.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

VGGISH_GFLOP_PER_PATCH = 1.728


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(function, *, min_seconds: float) -> tuple[int, float, float]:
    """Run ``function`` repeatedly for at least ``min_seconds``: (calls, wall s, CPU s)."""
    wall, cpu, calls = time.perf_counter(), cpu_seconds(), 0
    while True:
        function()
        calls += 1
        if time.perf_counter() - wall >= min_seconds:
            return calls, time.perf_counter() - wall, cpu_seconds() - cpu


def matmul_gflops(*, seconds: float = 2.0) -> tuple[float, float]:
    """Dense float32 matmul: (GFLOP per wall second, GFLOP per CPU second), best size."""
    import tensorflow as tf

    best_wall = best_cpu = 0.0
    for size in (2048, 4096):
        a = tf.random.normal((size, size), seed=0)
        b = tf.random.normal((size, size), seed=1)
        multiply = tf.function(lambda: tf.matmul(a, b))
        multiply().numpy()
        calls, wall, cpu = timed(lambda: multiply().numpy(), min_seconds=seconds)
        flops = 2 * size**3 * calls / 1e9
        best_wall, best_cpu = max(best_wall, flops / wall), max(best_cpu, flops / cpu)
    return best_wall, best_cpu


def make_backend(name: str, *, batch_size: int, xla: bool | None):
    from genrelib import embed, vggish

    if name == "vggish":
        real = vggish.converted_weights_available()
        backend = vggish.VGGishBackend(weights="cached" if real else "random", batch_size=batch_size, jit_compile=xla)
        weights = "converted official weights" if real else "RANDOM weights (same FLOPs; no real weights here)"
        engine = "XLA" if backend.jit_compile else "plain tf.function"
        return backend, f"vggish, batch {batch_size}, {engine}{' (default)' if xla is None else ''}: {weights}"
    return embed.get_backend(name), f"{name}: its registered weights"


def warm_up(backend, clip: Path) -> None:
    """Compile every shape the timed run will use (a full batch and each padded remainder)."""
    from genrelib import audio, embed

    y = audio.load(clip, sr=backend.sample_rate)
    if hasattr(backend, "embed_patches"):
        patches = backend.features(y)
        full = np.concatenate([patches] * (backend.batch_size // len(patches) + 1))
        for size in range(16, backend.batch_size + 1, 16):
            backend.embed_patches(full[:size])
    else:
        embed.embed_audio(y, sr=backend.sample_rate, backend=backend)


def embed_round(backend, clips: list[Path]) -> tuple[int, float, float]:
    """embed_dataset on ``clips`` into a fresh cache: (patches, wall s, CPU s)."""
    from genrelib import embed

    with tempfile.TemporaryDirectory(prefix="bench_embed_") as cache:
        wall, cpu = time.perf_counter(), cpu_seconds()
        result = embed.embed_dataset(clips, backend=backend, cache_dir_=cache, progress=False, on_error="raise")
        return int(result["n_patches"].sum()), time.perf_counter() - wall, cpu_seconds() - cpu


def model_only(backend, *, seconds: float) -> tuple[float, float]:
    """patches/s (wall, CPU) of full batches of ready-made patches: the model alone."""
    patches = np.random.default_rng(0).normal(size=(backend.batch_size, 96, 64)).astype(np.float32)
    calls, wall, cpu = timed(lambda: backend.embed_patches(patches), min_seconds=seconds)
    return calls * backend.batch_size / wall, calls * backend.batch_size / cpu


def decoded_only(backend, clip: Path, *, seconds: float) -> tuple[float, float]:
    """patches/s (wall, CPU) of a one-stage backend (musicnn, YAMNet) on one clip already decoded and resampled in
    memory, over and over: its front end and model without hashing, decoding, resampling or writing."""
    from genrelib import audio, embed

    y = audio.load(clip, sr=backend.sample_rate)
    n_patches = len(embed.embed_audio(y, sr=backend.sample_rate, backend=backend))
    calls, wall, cpu = timed(lambda: embed.embed_audio(y, sr=backend.sample_rate, backend=backend),
                             min_seconds=seconds)
    return calls * n_patches / wall, calls * n_patches / cpu


def find_clips(data: str | None, n_clips: int) -> tuple[list[Path], str]:
    from genrelib import data as gtzan

    root, source = gtzan.resolve_root(data)
    index = gtzan.load_gtzan(root)
    # Spread over genres: every k-th track of the sorted index.
    chosen = index.iloc[np.linspace(0, len(index) - 1, min(n_clips, len(index))).astype(int)]
    return [Path(p) for p in chosen["path"]], f"{root} ({source}), {len(chosen)} clips of {len(index)}"


def configurations(args) -> list[tuple[str, object, str]]:
    """(backend name, backend object, description) for every backend x engine x batch size asked for."""
    configs = []
    for name in args.backends:
        if name == "vggish":
            for xla in [{"auto": None, "xla": True, "plain": False}[engine] for engine in args.engines]:
                for batch_size in args.batch_sizes:
                    configs.append((name, *make_backend(name, batch_size=batch_size, xla=xla)))
        else:
            configs.append((name, *make_backend(name, batch_size=64, xla=True)))
    return configs


def report(name: str, label: str, rows: list[tuple], alone: tuple | None) -> None:
    """Summary of one configuration's rounds: (matmul wall, matmul CPU, patches/s wall, patches/s CPU)."""
    print(f"\n== {label}")
    speeds = [r[2] for r in rows]
    print(f"embed_dataset: median {statistics.median(speeds):.1f} patches/s (rounds: "
          f"{', '.join(f'{v:.1f}' for v in speeds)})")
    if name != "vggish":
        alone_wall, alone_cpu = alone
        ratios = [r[2] / alone_wall for r in rows]
        cpu_ratios = [r[3] / alone_cpu for r in rows]
        print(f"on decoded audio in memory (front end + model): {alone_wall:.1f} patches/s; end to end against it: "
              f"median {statistics.median(ratios):.2f}, best {max(ratios):.2f} (wall clock); median "
              f"{statistics.median(cpu_ratios):.2f} per CPU-second   [target >= 0.9]")
        return
    ratios = [r[2] * VGGISH_GFLOP_PER_PATCH / r[0] for r in rows]
    cpu_ratios = [r[3] * VGGISH_GFLOP_PER_PATCH / r[1] for r in rows]
    print(f"ratio end to end: median {statistics.median(ratios):.2f}, best {max(ratios):.2f} (wall clock); "
          f"median {statistics.median(cpu_ratios):.2f} per CPU-second   [target >= 0.9]")
    matmul_wall, matmul_cpu, alone_wall, alone_cpu = alone
    print(f"model alone (full batches of ready patches): {alone_wall:.1f} patches/s, ratio "
          f"{alone_wall * VGGISH_GFLOP_PER_PATCH / matmul_wall:.2f} (per CPU-second "
          f"{alone_cpu * VGGISH_GFLOP_PER_PATCH / matmul_cpu:.2f})")


def run_benchmark(clips: list[Path], args) -> None:
    """Rounds interleave every configuration right after a matmul measurement, so that load from other
    processes affects them alike."""
    configs = configurations(args)
    for _, backend, _ in configs:
        warm_up(backend, clips[0])
    rows = {label: [] for _, _, label in configs}
    for round_number in range(1, args.rounds + 1):
        matmul_wall, matmul_cpu = matmul_gflops()
        line = [f"round {round_number}: matmul {matmul_wall:.1f} GFLOP/s"]
        for name, backend, label in configs:
            n_patches, wall, cpu = embed_round(backend, clips)
            rows[label].append((matmul_wall, matmul_cpu, n_patches / wall, n_patches / cpu))
            ratio = n_patches / wall * VGGISH_GFLOP_PER_PATCH / matmul_wall
            ratio = f" (ratio {ratio:.2f})" if name == "vggish" else ""
            line.append(f"{label.split(':')[0]} {n_patches / wall:.1f} patches/s{ratio}")
        print(" | ".join(line), flush=True)
    for name, backend, label in configs:
        if name == "vggish":
            alone = (*matmul_gflops(), *model_only(backend, seconds=5.0))
        else:
            alone = decoded_only(backend, clips[0], seconds=5.0)
        report(name, label, rows[label], alone)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["vggish"],
                        help="registered backend names (vggish, musicnn-msd, ..., mfcc); default vggish")
    parser.add_argument("--clips", type=int, default=40, help="real clips per round (default 40)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64], help="VGGish batch sizes to try")
    parser.add_argument("--engines", nargs="+", choices=("auto", "xla", "plain"), default=["auto"],
                        help="VGGish forward pass: the backend's default (auto: XLA on GPU, plain graph on CPU), "
                             "XLA-compiled and/or plain tf.function")
    parser.add_argument("--data", default=None, help="GTZAN root (default: $GENRELIB_DATA, ...)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    clips, described = find_clips(args.data, args.clips)
    devices = ", ".join(d.device_type for d in tf.config.list_physical_devices()) or "CPU"
    print(f"machine: {os.cpu_count()} logical CPUs, devices {devices}, load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}; TensorFlow {tf.__version__}")
    print(f"data: {described}")
    run_benchmark(clips, args)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak_mb:.0f} MB; load average now {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"(other processes on the same cores lower the wall-clock ratio, not the per-CPU-second one)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
