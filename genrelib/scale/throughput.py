"""Measuring and projecting the throughput of :mod:`genrelib.scale`: what each stage costs per clip, clips/s of
each engine, and hours for a catalogue the size of FMA-large on N nodes.

Notebook: 07_scaling_out.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .. import audio, embed
from ..checks import positive_int, positive_number
from ..errors import ParameterError
from ..storage import file_digest
from .catalogue import catalogue_items
from .embed_job import embed_catalogue
from .session import init_ray, require_ray

__all__ = ["FMA_LARGE", "stage_costs", "pipeline_stages", "measure_throughput", "project_catalogue"]

#: FMA-large (Defferrard et al., 2017): 106 574 untrimmed clips of 30 s.
FMA_LARGE = {"name": "FMA-large", "n_clips": 106_574, "clip_seconds": 30.0}


def stage_costs(index_or_paths, *, backend: str = "auto", n_clips: int = 4,
                backend_options: dict | None = None) -> pd.DataFrame:
    """Seconds each stage costs per clip, measured one clip at a time in this process.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    index_or_paths : as for :func:`~genrelib.scale.catalogue_items`
    backend : str
    n_clips : int > 0
        The first ``n_clips`` clips are timed.
    backend_options : dict, optional
        Keyword options of the backend's factory (e.g. ``{"weights": "random"}`` for VGGish).

    Returns
    -------
    pd.DataFrame
        One row per stage (``start-up``, ``sha256``, ``decode + resample``, ``embed``): ``seconds`` in
        total, ``seconds_per_clip``, ``share`` of the per-clip work. ``start-up`` (building the backend and
        a first, untimed clip: model loading, imports, compilation) is paid once per worker.
    """
    items = catalogue_items(index_or_paths).head(positive_int(n_clips, "n_clips"))
    factory = embed.backend_factory(embed.resolve_backend(backend))
    start = time.perf_counter()
    model = factory(**(backend_options or {}))  # not get_backend: a cached instance hides the start-up cost
    # The first clip pays for lazy model loading, imports (librosa, soxr) and compilation: once per worker.
    warm_up = audio.load(items["path"].iloc[0], sr=model.sample_rate, min_duration=model.patch_seconds)
    embed.embed_audio(warm_up, sr=model.sample_rate, backend=model)
    load_seconds = time.perf_counter() - start
    totals = {"sha256": 0.0, "decode + resample": 0.0, "embed": 0.0}
    patches = 0
    for path in items["path"]:
        t0 = time.perf_counter()
        file_digest(path)
        t1 = time.perf_counter()
        y = audio.load(path, sr=model.sample_rate, min_duration=model.patch_seconds)
        t2 = time.perf_counter()
        patches += len(embed.embed_audio(y, sr=model.sample_rate, backend=model))
        t3 = time.perf_counter()
        for stage, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2)):
            totals[stage] += seconds
    per_clip = sum(totals.values())
    frame = pd.DataFrame({"stage": ["start-up", *totals], "seconds": [load_seconds, *totals.values()]})
    frame["seconds_per_clip"] = [np.nan, *(s / len(items) for s in totals.values())]
    frame["share"] = [np.nan, *(s / per_clip for s in totals.values())]
    frame.attrs.update(backend=model.name, n_clips=len(items), patches_per_clip=patches / len(items))
    return frame


def pipeline_stages(costs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The stages of :func:`~genrelib.scale.embed_catalogue`, where each runs, and (given :func:`stage_costs`) its cost.

    Notebook: 07_scaling_out.

    Returns
    -------
    pd.DataFrame
        ``stage``, ``runs_on``, ``seconds_per_clip`` (NaN where not measured): the table
        :func:`genrelib.plots.pipeline_stages` draws.
    """
    per_clip = {} if costs is None else dict(zip(costs["stage"], costs["seconds_per_clip"]))
    return pd.DataFrame([
        ("list clips", "driver: ids, paths,\nkeys in the output", np.nan),
        ("sha256,\nskip done", "Ray tasks; the driver\ndrops clips done", per_clip.get("sha256", np.nan)),
        ("decode,\nresample", "Ray tasks, 1 CPU each,\nas many as CPUs", per_clip.get("decode + resample", np.nan)),
        ("embed", "actor pool: model\nloaded once per actor\n(+1 GPU each)", per_clip.get("embed", np.nan)),
        ("write Parquet", "Ray tasks: local,\nS3, GCS, HDFS ...", np.nan),
    ], columns=["stage", "runs_on", "seconds_per_clip"])


def measure_throughput(index_or_paths, *, backend: str = "auto", workers: Iterable[int] = (1, 2),
                       batch_size: int = 4, repeats: int = 1, address: str | None = None, num_cpus: int = 2,
                       backend_options: dict | None = None) -> pd.DataFrame:
    """Clips/s and patches/s of :func:`~genrelib.embed.embed_dataset` and of Ray with each worker count.

    Notebook: 07_scaling_out.

    Every run starts from an empty cache or output folder (temporary), on the same clips, in one
    process; Ray is started first and its start-up time reported apart. With ``repeats`` > 1 the
    engines take turns, so that a change in the machine's load (a shared machine) hits them alike, and
    the median is reported. ``backend_options`` go to the backend's factory (e.g.
    ``{"weights": "random"}``: VGGish's cost without its weights).

    Returns
    -------
    pd.DataFrame
        ``engine``, ``workers``, ``clips``, ``patches``, ``seconds`` (median), ``seconds_min``,
        ``seconds_max``, ``clips_per_s``, ``patches_per_s``; ``attrs``: ``ray_start_seconds`` (None if
        Ray was already running), ``job_overhead_seconds`` (a one-clip job: actor start, model load,
        scheduling), ``cluster_cpus``, ``backend``, ``repeats``, ``load_average`` (1 min, before and after).
    """
    items = catalogue_items(index_or_paths)
    name, options = embed.resolve_backend(backend), dict(backend_options or {})
    repeats, load_before = positive_int(repeats, "repeats"), os.getloadavg()[0]
    for path in items["path"]:
        file_digest(path)  # every run then reads from the page cache, the first one included
    runs: dict[tuple[str, int], list] = {}
    with tempfile.TemporaryDirectory(prefix="genrelib-throughput-") as scratch:
        ray = require_ray()
        started, start = not ray.is_initialized(), time.perf_counter()
        ray = init_ray(address, num_cpus=num_cpus)
        ray_start = time.perf_counter() - start if started else None
        # A one-clip job: the fixed cost of every job (actor start, model load, scheduling); it also
        # starts Ray's worker processes, which later jobs reuse.
        job_overhead = embed_catalogue(items.head(1), backend=name, output=Path(scratch, "overhead"),
                                       backend_options=options, engine="ray", progress=False).attrs["seconds"]
        for repeat in range(repeats):
            folder = Path(scratch, f"run{repeat}")
            start = time.perf_counter()
            frame = embed.embed_dataset(items, backend=embed.get_backend(name, **options), cache_dir_=folder / "npz",
                                        progress=False, on_error="report")
            runs.setdefault(("embed_dataset (1 process)", 1), []).append((frame, time.perf_counter() - start))
            for count in workers:
                result = embed_catalogue(items, backend=name, output=folder / f"ray{count}", engine="ray",
                                         backend_options=options, num_workers=count, batch_size=batch_size,
                                         progress=False)
                runs.setdefault(("Ray Data", count), []).append((result, result.attrs["seconds"]))
    table = _throughput_table(runs)
    table.attrs.update(ray_start_seconds=ray_start, job_overhead_seconds=job_overhead, repeats=repeats,
                       cluster_cpus=ray.cluster_resources().get("CPU"), backend=name,
                       load_average=(load_before, os.getloadavg()[0]))
    return table


def _throughput_table(runs: dict) -> pd.DataFrame:
    rows = []
    for (engine, count), results in runs.items():
        frame = results[0][0]
        seconds = [s for _, s in results]
        rows.append({"engine": engine, "workers": count, "clips": int(frame["error"].isna().sum()),
                     "patches": int(frame["n_patches"].fillna(0).sum()), "seconds": float(np.median(seconds)),
                     "seconds_min": min(seconds), "seconds_max": max(seconds)})
    table = pd.DataFrame(rows)
    table["clips_per_s"] = table["clips"] / table["seconds"]
    table["patches_per_s"] = table["patches"] / table["seconds"]
    return table


def describe_engine_benchmark(path: str | os.PathLike) -> str:
    """One paragraph on a committed ``benchmarks/bench_engines.py`` result: one process against Ray, end to end.

    Parameters
    ----------
    path : path
        ``results/bench_engines_<backend>.json``.

    Returns
    -------
    str
        Median seconds of each engine on all clips and on one clip, Ray's extra time, its fixed cost and its
        extra cost per clip beyond it, from how many clips on Ray is within 10 %, and the machine; or, when the
        file is missing, which command writes it.
    """
    import json

    path = Path(path)
    if not path.is_file():
        return f"no engine benchmark at {path}: `python benchmarks/bench_engines.py` writes it"
    result = json.loads(path.read_text())
    median, fixed = result["median_seconds"], result["fixed_seconds"]
    within = result["clips_for_overhead_at_most_10_percent"]
    machine = result["machine"]
    cpu = machine.get("cpu") or {}
    isa = "AVX-512" if cpu.get("avx512f") else "AVX2" if cpu.get("avx2") else "no AVX2"
    return (f"{path.name} ({result['when'][:10]}, {cpu.get('model', 'unknown CPU')} {isa}, {machine['cpus']} CPUs; "
            f"backend {result['backend']}, medians of {result['repeats']} turns): {result['clips']} clips took "
            f"{median['local']['all']:.1f} s in one process and {median['ray']['all']:.1f} s on Ray "
            f"({result['ray_overhead'] * 100:+.0f} %); a one-clip job {median['local']['one']:.1f} s against "
            f"{median['ray']['one']:.1f} s. Fixed cost {fixed['local']:.1f} s against {fixed['ray']:.1f} s; beyond "
            f"it Ray costs {result['ray_overhead_beyond_fixed'] * 100:+.0f} % per clip, so it stays within 10 % of one "
            f"process from " + (f"{within} clips on." if within is not None else "no number of clips on."))


def project_catalogue(*, cpu_seconds_per_patch: float, decode_cpu_seconds_per_clip: float,
                      patches_per_clip: float, n_clips: int = FMA_LARGE["n_clips"],
                      nodes: Iterable[int] = (1, 4, 16, 64), cpus_per_node: int = 16,
                      job_overhead_seconds: float = 0.0) -> pd.DataFrame:
    """A *projection* (not a measurement): hours to embed ``n_clips`` on N nodes, from measured unit costs.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    cpu_seconds_per_patch : float > 0
        All-in CPU time per patch (decode + embed + write): ``CPUs / patches_per_s`` of the best
        :func:`measure_throughput` run, which keeps every CPU of the measuring machine busy.
    decode_cpu_seconds_per_clip : float > 0
        CPU time to hash, decode and resample one clip (:func:`stage_costs`): what is left for the CPUs
        of a GPU node once the model runs on the GPU.
    patches_per_clip : float > 0
        31 for a 30 s clip and 0.96 s patches.
    n_clips : int > 0
        Default FMA-large's 106 574.
    nodes : iterable of int
    cpus_per_node : int > 0
    job_overhead_seconds : float >= 0
        Fixed cost of one job (Ray start-up, actor start, model load), added once.

    Returns
    -------
    pd.DataFrame
        ``nodes``, ``cpus``, ``cpu_nodes_hours`` (model on CPUs) and ``gpu_nodes_hours_at_least`` (model
        on one GPU per node; a lower bound set by decoding on the node's CPUs, since the GPU's own rate is
        not measured here), ``node_hours`` of the CPU-only run.

    Notes
    -----
    Assumes linear scaling: every CPU of every node as fast as the measuring machine's, long jobs (Ray's
    per-job costs amortised), storage and network keeping up.
    """
    for value, name in ((cpu_seconds_per_patch, "cpu_seconds_per_patch"), (patches_per_clip, "patches_per_clip"),
                        (decode_cpu_seconds_per_clip, "decode_cpu_seconds_per_clip")):
        positive_number(value, name)
    n_clips, cpus_per_node = positive_int(n_clips, "n_clips"), positive_int(cpus_per_node, "cpus_per_node")
    nodes = [positive_int(n, "nodes") for n in nodes]
    cpu_seconds = n_clips * patches_per_clip * cpu_seconds_per_patch
    frame = pd.DataFrame({"nodes": nodes, "cpus": [n * cpus_per_node for n in nodes]})
    if isinstance(job_overhead_seconds, bool) or not job_overhead_seconds >= 0:
        raise ParameterError(f"job_overhead_seconds={job_overhead_seconds!r} must be a number >= 0")
    frame["cpu_nodes_hours"] = (cpu_seconds / frame["cpus"] + job_overhead_seconds) / 3600
    frame["gpu_nodes_hours_at_least"] = (n_clips * decode_cpu_seconds_per_clip / frame["cpus"]
                                         + job_overhead_seconds) / 3600
    frame["node_hours"] = frame["cpu_nodes_hours"] * frame["nodes"]
    frame.attrs.update(kind="projection", n_clips=n_clips, patches=n_clips * patches_per_clip)
    return frame
