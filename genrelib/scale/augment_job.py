"""The augmentation job of :mod:`genrelib.scale`: :func:`genrelib.augment.augment_split`'s plan, per-source
worker and manifest, with Ray tasks on every CPU of a cluster as the pool.

Notebook: 07_scaling_out.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .. import augment
from ..checks import one_of, warn
from ..errors import ParameterError
from .embed_job import ENGINES
from .session import init_ray, ray_job
from .stages import failure_reason

__all__ = ["augment_catalogue"]


def augment_catalogue(
    index: pd.DataFrame,
    split,
    *,
    config=None,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    track_ids: Iterable[str] | None = None,
    include_original: bool = True,
    engine: str = "ray",
    address: str | None = None,
    num_cpus: int = 2,
    max_retries: int = 3,
    overwrite: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Augment the training tracks of a split on Ray Data: one CPU task per source track, same cache.

    Notebook: 07_scaling_out.

    The items, their parameters, the FLAC files and the manifest are those of
    :func:`genrelib.augment.augment_split`, whose public steps (:func:`~genrelib.augment.plan_augmentation`,
    :func:`~genrelib.augment.augment_source`, :meth:`~genrelib.augment.AugmentPlan.manifest`) this
    function runs; only the pool differs (Ray tasks on every CPU of the cluster instead of local
    processes). ``engine="local"`` is ``augment_split`` itself.

    Parameters
    ----------
    index, split, config, seed, track_ids, include_original, overwrite, progress
        As for :func:`~genrelib.augment.augment_split`; only ``split.train`` is ever augmented.
    cache_dir : path, optional
        The augmentation cache (default ``$GENRELIB_CACHE/augment``); on a cluster, a folder every node
        mounts at the same path.
    engine : {"ray", "local"}
    address, num_cpus
        As for :func:`~genrelib.scale.init_ray`.
    max_retries : int >= 0
        Ray re-runs the task of a worker that died (lost node, out of memory) up to this many times.

    Returns
    -------
    manifest : pd.DataFrame
        As from ``augment_split``; a source that cannot be decoded or written has its ``error`` set (the job
        goes on). ``attrs``: ``n_sources``, ``n_tasks`` (sources with missing items), ``n_errors``, ``seconds``.

    Notes
    -----
    Resumable as ``augment_split``: items already in the cache are not redone, and a run with nothing
    missing starts no Ray job.
    """
    one_of(engine, ENGINES, "engine")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ParameterError(f"max_retries={max_retries!r} must be an integer >= 0")
    start = time.perf_counter()
    if engine == "local":
        manifest = augment.augment_split(index, split, config=config, cache_dir=cache_dir, seed=seed,
                                         track_ids=track_ids, include_original=include_original,
                                         overwrite=overwrite, progress=progress, on_error="report")
        return _report(manifest, n_tasks=None, start=start)
    # A track outside split.train raises LeakageError here, before anything is written.
    plan = augment.plan_augmentation(index, split, config=config, cache_dir=cache_dir, seed=seed,
                                     track_ids=track_ids)
    tasks = [{"track_id": items[0].track_id, "path": path, "items": json.dumps([_item_fields(i) for i in items])}
             for path, items in plan.sources_to_do(overwrite=overwrite)]
    errors = _augment_on_ray(tasks, sample_rate=plan.config.sample_rate, address=address, num_cpus=num_cpus,
                             max_retries=max_retries, progress=progress) if tasks else {}
    manifest = plan.manifest(errors, include_original=include_original)
    augment.assert_no_leakage(split, manifest)
    return _report(manifest, n_tasks=len(tasks), start=start)


def _item_fields(item: augment.AugmentItem) -> dict:
    """An item as JSON-ready fields: a Ray Data row holds plain values."""
    return {**dataclasses.asdict(item), "path": str(item.path)}


def _augment_batch(batch: dict, *, sample_rate: int) -> dict:
    """CPU task: :func:`genrelib.augment.augment_source` on each source; an error never stops the job."""
    errors = []
    for path, fields in zip(batch["path"], batch["items"]):
        items = [augment.AugmentItem(**{**f, "path": Path(f["path"])}) for f in json.loads(fields)]
        try:
            error = augment.augment_source(str(path), items, sr=sample_rate)
        except Exception as exc:  # a cache that cannot be written, a crash in the DSP: one row, not the job
            error = failure_reason(exc, str(path))
        errors.append(error)
    return {"track_id": np.asarray(batch["track_id"]), "error": np.asarray(errors, dtype=object)}


def _augment_on_ray(tasks: list[dict], *, sample_rate, address, num_cpus, max_retries, progress) -> dict:
    """Run every task on Ray; return ``{track_id: error}`` for the sources that failed."""
    ray = init_ray(address, num_cpus=num_cpus)
    blocks = min(len(tasks), 4 * int(ray.cluster_resources().get("CPU", 1)))
    with ray_job(ray, progress=progress, what_survives="finished items stay cached and a re-run resumes"):
        with warnings.catch_warnings():
            # max_retries goes through **ray_remote_args, deprecated in Ray 2.60 without a named
            # replacement (see genrelib.scale.embed_job._ray_dataset).
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            dataset = ray.data.from_items(tasks, override_num_blocks=blocks).map_batches(
                _augment_batch, batch_size=1, num_cpus=1, max_retries=max_retries,
                fn_kwargs={"sample_rate": sample_rate})
        rows = dataset.take_all()
    return {row["track_id"]: row["error"] for row in rows if row["error"]}


def _report(manifest: pd.DataFrame, *, n_tasks: int | None, start: float) -> pd.DataFrame:
    failed = manifest.loc[manifest["error"].notna()].drop_duplicates("track_id")
    if len(failed):
        warn(f"{len(failed)} source clips could not be augmented (error column of the manifest); "
             f"first: {failed['error'].iloc[0]}")
    manifest.attrs.update(n_sources=int(manifest["track_id"].nunique()), n_tasks=n_tasks,
                          n_errors=len(failed), seconds=time.perf_counter() - start)
    return manifest
