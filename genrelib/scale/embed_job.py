"""The embedding job of :mod:`genrelib.scale`: hash every clip, drop those already in the output, decode the
rest in CPU tasks and embed them in a pool of model actors (or all of it in this process), into Parquet.

Notebook: 07_scaling_out.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

import pandas as pd

from .. import embed
from ..checks import one_of, positive_int, positive_number, warn
from ..errors import ParameterError
from .catalogue import catalogue_items
from .parquet import (KEY_COLUMNS, done_keys, hashed_schema, input_schema, key_frame, latest_rows, require_pyarrow,
                      resolve_output, write_atomically)
from .session import init_ray, on_local_cluster, ray_job
from .stages import EmbedWorker, decode_batch, hash_batch, identity_columns

__all__ = ["ENGINES", "embed_catalogue"]

#: Where the work runs: ``"local"`` (this process, no Ray) or ``"ray"`` (a local or remote Ray cluster).
ENGINES = ("local", "ray")

#: Clips per hashing thread's share when the driver hashes for its own local cluster.
DRIVER_HASH_ROWS = 64


def embed_catalogue(
    index_or_paths: pd.DataFrame | str | os.PathLike | Iterable,
    *,
    backend: str = "auto",
    output: str | os.PathLike,
    engine: str = "ray",
    address: str | None = None,
    batch_size: int = 16,
    num_workers: int = 1,
    num_gpus_per_worker: float | None = None,
    num_cpus: int = 2,
    filesystem=None,
    backend_options: dict | None = None,
    retry_errors: bool = False,
    overwrite: bool = False,
    max_restarts: int = 3,
    max_task_retries: int = 3,
    progress: bool = True,
) -> pd.DataFrame:
    """Embed every clip of a collection into Parquet, on Ray Data (or in this process), resumably.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    index_or_paths : pd.DataFrame, folder or iterable of paths
        See :func:`~genrelib.scale.catalogue_items`.
    backend : str
        A name from :data:`genrelib.embed.BACKENDS` or ``"auto"``; each actor builds it once.
    output : str or PathLike
        Folder of Parquet files: a local path, a URI pyarrow understands (``s3://bucket/prefix``,
        ``gs://...``, ``hdfs://...``) or a path on ``filesystem``. Runs append; see
        :func:`~genrelib.scale.load_catalogue`.
    engine : {"ray", "local"}
        ``"local"`` runs the same stages in this process (no Ray needed).
    address : str, optional
        Ray cluster address; default ``$RAY_ADDRESS``, else a local cluster (:func:`~genrelib.scale.init_ray`).
    batch_size : int > 0
        Clips per model call batch (16 clips of 30 s = 496 VGGish patches).
    num_workers : int > 0
        Model actors (one model copy each).
    num_gpus_per_worker : float >= 0, optional
        GPUs per actor; default 1 when the cluster has at least one GPU per actor, else the GPUs shared.
    num_cpus : int > 0
        CPUs of a *local* Ray cluster (2 = CI machine).
    filesystem : pyarrow.fs.FileSystem, optional
        Where ``output`` lives, when a URI is not enough (credentials, endpoint).
    backend_options : dict, optional
        Keyword options of the backend's factory (hashable values).
    retry_errors : bool
        Redo clips whose earlier row is an error (by default an error row counts as done: the same bytes
        fail the same way).
    overwrite : bool
        Redo every clip; the new rows supersede the old ones (see :func:`~genrelib.scale.load_catalogue`).
    max_restarts, max_task_retries : int >= 0
        Ray restarts a dead actor up to ``max_restarts`` times and re-sends its batches up to
        ``max_task_retries`` times, so a crashed worker (out of memory, lost node) costs a retry, not the job.
    progress : bool
        Progress bars (Ray Data's, or tqdm for ``engine="local"``).

    Returns
    -------
    pd.DataFrame
        One row per input clip: ``item_id``, ``track_id``, ``genre``, ``path``, ``source_checksum``,
        ``n_patches``, ``error``, ``run_id`` and ``new`` (embedded by this call rather than found in the
        output). ``attrs`` holds ``n_new``, ``n_skipped``, ``n_errors``, ``seconds``, ``engine``,
        ``num_workers`` and ``backend``.

    Notes
    -----
    Results equal :func:`genrelib.embed.embed_dataset`'s (same decoding and model calls). A re-run
    hashes every file again (in parallel; about 1 ms per 30 s clip) but decodes and embeds only clips not
    yet in the output; when none is left, no model is loaded and no job starts (the driver reads the
    backend's identity with :func:`genrelib.embed.describe_backend`, which builds no network).
    """
    _check_options(engine=engine, batch_size=batch_size, num_workers=num_workers, num_cpus=num_cpus,
                   max_restarts=max_restarts, max_task_retries=max_task_retries,
                   num_gpus_per_worker=num_gpus_per_worker)
    items = catalogue_items(index_or_paths)
    options, name = dict(backend_options or {}), embed.resolve_backend(backend)
    info = embed.describe_backend(name, **options)
    identity = identity_columns(info)
    filesystem, folder = resolve_output(output, filesystem)
    done = frozenset() if overwrite else done_keys(filesystem, folder, identity, retry_errors=retry_errors)
    run_id = _new_run_id()
    plan = {"backend": name, "target": embed.BACKENDS[name], "options": options, "run_id": run_id,
            "sample_rate": info.sample_rate, "min_duration": info.patch_seconds, "batch_size": batch_size}
    start = time.perf_counter()
    ray = init_ray(address, num_cpus=num_cpus) if engine == "ray" else None
    todo = _not_done(_hash_clips(ray, items, batch_size), done)
    if todo.num_rows == 0:
        pass  # every clip is in the output already: no decoding, no model, no job
    elif engine == "local":
        _run_local(todo, filesystem, folder, **plan, progress=progress)
    else:
        with ray_job(ray, progress=progress,
                     what_survives=f"batches already written stay in {folder} and a re-run resumes from them"):
            _ray_dataset(ray, todo, **plan, num_workers=num_workers, num_gpus_per_worker=num_gpus_per_worker,
                        max_restarts=max_restarts, max_task_retries=max_task_retries,
                        ).write_parquet(folder, filesystem=filesystem)
    seconds = time.perf_counter() - start
    result = _summarise(items, filesystem, folder, identity, run_id)
    result.attrs.update(seconds=seconds, engine=engine, num_workers=num_workers if engine == "ray" else 1,
                        backend=name)
    return result


def _check_options(*, engine, batch_size, num_workers, num_cpus, max_restarts, max_task_retries,
                   num_gpus_per_worker) -> None:
    """Refuse bad options before any file is read or any process started."""
    one_of(engine, ENGINES, "engine")
    for value, name in ((batch_size, "batch_size"), (num_workers, "num_workers"), (num_cpus, "num_cpus")):
        positive_int(value, name)
    for value, name in ((max_restarts, "max_restarts"), (max_task_retries, "max_task_retries")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ParameterError(f"{name}={value!r} must be an integer >= 0")
    if num_gpus_per_worker is not None and not num_gpus_per_worker == 0:
        positive_number(num_gpus_per_worker, "num_gpus_per_worker")
    require_pyarrow()


def _new_run_id() -> str:
    """UTC time to the microsecond, then a random suffix: later runs sort after earlier ones."""
    now = time.time()
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}.{int(now % 1 * 1e6):06d}Z-{uuid.uuid4().hex[:8]}"


def _hash_clips(ray, items: pd.DataFrame, batch_size: int):
    """:func:`~genrelib.scale.stages.hash_batch` over every clip: in Ray tasks on a remote cluster, else in
    this process. Returns a pyarrow table of :func:`~genrelib.scale.parquet.hashed_schema`."""
    import pyarrow as pa

    table = pa.Table.from_pandas(items, schema=input_schema(), preserve_index=False)
    if ray is None:
        return hash_batch(table)
    if on_local_cluster(ray):
        # Same machine, same files: a Ray job here adds its own start (0.4 s with warm workers, for 100 clips
        # hashed in 0.04 s; with cold workers its 8-12 s move to the decoding tasks, which start them anyway).
        # Threads hash side by side (hashlib releases the GIL).
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            return pa.concat_tables(pool.map(hash_batch, _blocks(table, DRIVER_HASH_ROWS))).cast(hashed_schema())
    rows = _decode_rows(ray, len(items), batch_size)
    hashed = ray.data.from_arrow(_blocks(table, rows)).map_batches(hash_batch, batch_format="pyarrow",
                                                                    batch_size=rows, num_cpus=1)
    return pa.concat_tables(ray.get(hashed.to_arrow_refs())).cast(hashed_schema())


def _blocks(table, rows: int) -> list:
    return [table.slice(start, rows) for start in range(0, table.num_rows, rows)]


def _not_done(hashed, done: frozenset):
    """The rows of ``hashed`` whose (item id, checksum) is not among ``done``, in their order."""
    import pyarrow as pa

    keys = zip(hashed.column("item_id").to_pylist(), hashed.column("source_checksum").to_pylist())
    return hashed.filter(pa.array([key not in done for key in keys], pa.bool_()))


def _decode_rows(ray, n_items: int, batch_size: int) -> int:
    """Clips per decoding task: small enough that every CPU of the cluster gets some."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(batch_size, -(-n_items // (2 * cpus))))


def _run_local(todo, filesystem, folder: str, *, backend, target, options, run_id, sample_rate, min_duration,
               batch_size, progress) -> None:
    from tqdm.auto import tqdm

    worker = EmbedWorker(backend, target, options, run_id)
    filesystem.create_dir(folder, recursive=True)
    for number, start in enumerate(tqdm(range(0, todo.num_rows, batch_size), disable=not progress,
                                        desc=f"embed [{backend}, local]", unit="batch")):
        decoded = decode_batch(todo.slice(start, batch_size), sample_rate=sample_rate, min_duration=min_duration)
        write_atomically(worker(decoded), filesystem, folder, f"{run_id}_{number:06d}")


def _ray_dataset(ray, todo, *, backend, target, options, run_id, sample_rate, min_duration, batch_size,
                 num_workers, num_gpus_per_worker, max_restarts, max_task_retries):
    """The lazy Ray Data pipeline: hashed rows -> decode tasks -> model actor pool (not yet executed)."""
    rows = _decode_rows(ray, todo.num_rows, batch_size)
    dataset = ray.data.from_arrow(_blocks(todo, rows)).map_batches(
        decode_batch, batch_format="pyarrow", batch_size=rows, num_cpus=1,
        fn_kwargs={"sample_rate": sample_rate, "min_duration": min_duration})
    with warnings.catch_warnings():
        # Ray 2.60 deprecates passing actor options such as max_restarts as **ray_remote_args but offers
        # no named parameter for them yet (genrelib pins ray 2.60). These options also keep Ray from
        # fusing decoding into the actors, which would serialise it behind the model.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        return dataset.map_batches(
            EmbedWorker, batch_format="pyarrow", batch_size=batch_size,
            fn_constructor_kwargs={"backend": backend, "target": target, "options": options, "run_id": run_id},
            compute=ray.data.ActorPoolStrategy(size=num_workers),
            num_cpus=_cpus_per_worker(ray, num_workers),
            num_gpus=_gpus_per_worker(ray, num_gpus_per_worker, num_workers),
            max_restarts=max_restarts, max_task_retries=max_task_retries)


def _cpus_per_worker(ray, num_workers: int) -> float:
    """CPUs each model actor reserves: one, unless that would leave no CPU for the decoding tasks.

    Actors that reserve every CPU starve the decoding stage and the job waits forever; on a small
    machine the actors share what is left after one CPU for decoding (the OS still lets each use a core).
    """
    cpus = float(ray.cluster_resources().get("CPU", 0))
    if cpus < 2:
        raise ParameterError(f"the Ray cluster has {cpus:g} CPUs; decoding and embedding need at least 2 "
                             "(use engine='local' on a single core)")
    return min(1.0, (cpus - 1) / num_workers)


def _gpus_per_worker(ray, requested: float | None, num_workers: int) -> float:
    """GPUs each model actor reserves: ``requested``, else one each while the cluster has enough, else a share."""
    if requested is not None:
        return float(requested)
    gpus = float(ray.cluster_resources().get("GPU", 0))
    return min(1.0, gpus / num_workers) if gpus else 0.0


def _summarise(items, filesystem, folder, identity, run_id) -> pd.DataFrame:
    rows = key_frame(filesystem, folder, [*KEY_COLUMNS, "n_patches"])
    for column, value in identity.items():
        rows = rows[rows[column] == value]
    rows = latest_rows(rows)[["item_id", "source_checksum", "n_patches", "error", "run_id"]]
    result = items.merge(rows, on="item_id", how="left")
    result["new"] = (result["run_id"] == run_id).to_numpy()
    missing = result["run_id"].isna()
    if missing.any():
        warn(f"{int(missing.sum())} of {len(result)} clips have no row in {folder} "
             f"(e.g. {result.loc[missing, 'path'].iloc[0]}); a re-run processes them")
    errors = result["error"].notna()
    if errors.any():
        warn(f"{int(errors.sum())} of {len(result)} clips could not be embedded (error rows in {folder}); "
             f"first: {result.loc[errors, 'error'].iloc[0]}")
    result.attrs.update(n_items=len(result), n_new=int(result["new"].sum()),
                        n_skipped=int((~result["new"] & ~missing).sum()), n_errors=int(errors.sum()),
                        n_missing=int(missing.sum()), output=folder, run_id=run_id)
    return result
