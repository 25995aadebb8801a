"""Benchmark: augmenting training clips, naive serial librosa vs ``genrelib.augment.augment_split``.

Both run in this one process run, on the same real clips (default: every clip of the GTZAN mini set):

(a) baseline - per clip: ``librosa.load(sr=None)`` (22 050 Hz), ``librosa.effects.time_stretch``,
    ``librosa.effects.pitch_shift`` and Gaussian noise, one process, results discarded (not written);
(b) ``augment_split`` end to end with its defaults - decode once at 16 kHz, three methods, three 16-bit FLAC
    files per clip written atomically into a fresh cache, 2 worker processes.

Each is timed from cold: (a) includes librosa's import, (b) the start of its worker processes. A third,
warm run of (b) (``overwrite=True``, the fork server already running) gives the per-clip cost used to
project the time for 800 training clips x 3 methods. Memory is sampled over the whole process tree (this
process, the fork server and its workers): summed RSS every 50 ms (shared pages counted in every process:
an upper bound) and summed PSS every second. CPU seconds of the tree are reported too: on a shared machine
they are a steadier measure than wall time. Targets: ratio >= 2.5 on 2 cores; peak RSS <= 1.5 GB
whatever the number of clips.

Usage: ``python benchmarks/bench_augment.py [--data DIR] [--clips N]`` (also run by ``make bench``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import numpy as np
import psutil

import genrelib.augment as augment
import genrelib.data as data
from genrelib.config import AugmentConfig


class TreeMonitor:
    """Samples this process and all its descendants in a background thread: summed RSS every 50 ms,
    summed PSS (shared pages split between the processes sharing them) every second, and CPU seconds.

    Reading PSS (``/proc/PID/smaps``) is costly, hence its slower pace; the sampler's own CPU time is
    subtracted from the totals it reports."""

    def __init__(self, interval: float = 0.05, pss_interval: float = 1.0):
        self.interval = interval
        self.pss_interval = pss_interval
        self.own_cpu = 0.0
        self.rss: list[tuple[float, int]] = []
        self.pss: list[tuple[float, int]] = []
        self._cpu: dict[int, float] = {}  # pid -> last seen user + system seconds (kept after exit)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me, last_pss = psutil.Process(), 0.0
        while not self._stop.is_set():
            now, rss, pss = time.perf_counter(), 0, 0
            with_pss = now - last_pss > self.pss_interval
            for process in [me, *me.children(recursive=True)]:
                try:
                    with process.oneshot():
                        rss += process.memory_info().rss
                        times = process.cpu_times()
                        self._cpu[process.pid] = times.user + times.system
                        if with_pss:
                            pss += process.memory_full_info().pss
                except psutil.Error:  # a worker that just exited
                    pass
            self.rss.append((now, rss))
            if with_pss:
                self.pss.append((now, pss))
                last_pss = now
            self.own_cpu = time.thread_time()
            time.sleep(self.interval)

    def cpu_seconds(self) -> float:
        """CPU time of the whole tree so far (this process read now, less the sampler; the others as last
        sampled)."""
        mine = psutil.Process().cpu_times()
        others = sum(cpu for pid, cpu in self._cpu.items() if pid != os.getpid())
        return mine.user + mine.system - self.own_cpu + others

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def peak(self, start: float = -np.inf, end: float = np.inf, *, kind: str = "rss") -> float:
        """Peak in GiB between two ``time.perf_counter()`` readings."""
        samples = self.rss if kind == "rss" else self.pss
        return max((value for t, value in samples if start <= t <= end), default=0) / 2**30


def baseline(paths: list[str], *, config: AugmentConfig, seed: int) -> float:
    """(a): plain serial librosa at the file's rate; returns seconds."""
    start = time.perf_counter()
    import librosa  # timed: a cold script pays this too

    rng = np.random.default_rng(seed)
    for path in paths:
        y, sr = librosa.load(path, sr=None)
        librosa.effects.time_stretch(y, rate=rng.uniform(*config.stretch_rate_range))
        librosa.effects.pitch_shift(y, sr=sr, n_steps=rng.uniform(*config.pitch_steps_range))
        noise_std = np.sqrt(np.mean(y**2) / 10 ** (rng.uniform(*config.noise_snr_db_range) / 10))
        _ = y + rng.standard_normal(y.size).astype(np.float32) * noise_std
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("GENRELIB_DATA", "../shared/data/gtzan_mini"))
    parser.add_argument("--clips", type=int, default=None, help="use the first N clips (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    index = data.load_gtzan(args.data)
    if args.clips:
        index = index.iloc[: args.clips]
    # Every clip is a training clip here: the benchmark measures throughput, not a protocol.
    split = data.Split(tuple(index["track_id"]), (), (), protocol="benchmark (all clips as training)")
    config = AugmentConfig()
    n_clips, n_methods = len(index), len(config.methods)
    print(f"data: {args.data} ({n_clips} clips, {index['samplerate'].iloc[0]} Hz, "
          f"{index['duration'].mean():.1f} s each); CPU cores: {os.cpu_count()}; "
          f"load average before: {os.getloadavg()[0]:.2f}")

    with TreeMonitor() as monitor, tempfile.TemporaryDirectory() as cache:
        t0, cpu0 = time.perf_counter(), monitor.cpu_seconds()
        seconds_a = baseline(list(index["path"]), config=config, seed=args.seed)
        time.sleep(0.1)  # let the sampler see every process at its end state
        t1, cpu1 = time.perf_counter(), monitor.cpu_seconds()
        augment.augment_split(index, split, cache_dir=cache, seed=args.seed, progress=False)
        time.sleep(0.1)
        t2, cpu2 = time.perf_counter(), monitor.cpu_seconds()
        augment.augment_split(index, split, cache_dir=cache, seed=args.seed, progress=False, overwrite=True)
        time.sleep(0.1)
        t3, cpu3 = time.perf_counter(), monitor.cpu_seconds()
        cached_files = sum(len(files) for _, _, files in os.walk(cache))
    seconds_b, seconds_warm = t2 - t1 - 0.1, t3 - t2 - 0.1
    rate_a, rate_b = n_clips / seconds_a, n_clips / seconds_b
    start_up = max(seconds_b - seconds_warm, 0.0)
    projected = start_up + 800 * seconds_warm / n_clips

    def memory(start, end):
        return (f"peak RSS {monitor.peak(start, end):.2f} GiB (PSS {monitor.peak(start, end, kind='pss'):.2f})")

    print(f"(a) baseline, serial librosa at 22 050 Hz, 1 process  : {seconds_a:6.2f} s {rate_a:6.2f} clips/s  "
          f"CPU {1000 * (cpu1 - cpu0) / n_clips:4.0f} ms/clip  {memory(t0, t1)}")
    print(f"(b) augment_split defaults (16 kHz, FLAC, 2 workers) : {seconds_b:6.2f} s {rate_b:6.2f} clips/s  "
          f"CPU {1000 * (cpu2 - cpu1) / n_clips:4.0f} ms/clip  {memory(t1, t2)}  ({cached_files} files)")
    middle = (t1 + t2) / 2
    print(f"    first / second half of (b): {memory(t1, middle)} / {memory(middle, t2)} "
          f"(equal = memory does not grow with the number of clips)")
    print(f"(b') again, warm workers, overwrite=True              : {seconds_warm:6.2f} s "
          f"{n_clips / seconds_warm:6.2f} clips/s  CPU {1000 * (cpu3 - cpu2) / n_clips:4.0f} ms/clip  {memory(t2, t3)}")
    print(f"ratio (b)/(a), both from cold: {rate_b / rate_a:.2f};  (b')/(a): {seconds_a / seconds_warm:.2f}  "
          f"(target >= 2.5 on 2 cores)")
    print(f"CPU per clip (a)/(b'): {(cpu1 - cpu0) / (cpu3 - cpu2):.2f}; on 2 otherwise idle cores that is a "
          f"ratio of up to {2 * (cpu1 - cpu0) / (cpu3 - cpu2):.2f}")
    print(f"projected for 800 training clips x {n_methods} methods: {projected / 60:.1f} min "
          f"(start-up {start_up:.1f} s + {1000 * seconds_warm / n_clips:.0f} ms per clip); "
          f"baseline: {800 * seconds_a / n_clips / 60:.1f} min")
    print(f"load average after: {os.getloadavg()[0]:.2f} (other work on the machine slows both runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
