"""Scale out: embed (and augment) catalogue-size collections on Ray Data.

Notebook: 07_scaling_out.

GTZAN is 1000 clips; a label's back catalogue or FMA-large (106 574 clips of 30 s, about 3.3 M VGGish
patches) outgrows one machine at the embedding step. This module runs the *same* per-clip work as
:func:`genrelib.embed.embed_dataset` on `Ray Data <https://docs.ray.io/en/latest/data/data.html>`_, so
the same code runs on a laptop (``ray.init(num_cpus=2)``) and unchanged on a multi-node cluster
(``address=`` / ``$RAY_ADDRESS``), with GPUs where the cluster has them::

    list clips  ->  sha256  ->  drop clips      ->  decode +   ->  embed: actor pool,   ->  Parquet: one row
    (driver)        (CPU       already in the       resample      model loaded once        per clip, local
                    tasks)     output (driver)      (CPU tasks)   per actor (+1 GPU)       or any pyarrow fs

Output: one Parquet row per clip (:data:`OUTPUT_SCHEMA`): ids, the source file's sha256, the backend, its
weights checksum and front-end version, the embedding sequence ``[n_patches][d]`` and an error message
(null when the clip was embedded). Nothing is written for a clip twice: a run first reads the keys
already in the output and skips those clips (by item id and the file's sha256), so an interrupted job
loses at most the batches in flight and a finished one is not redone. A bad file becomes an error row
with its reason; it never stops the job.

Ray is an optional dependency (``pip install 'genrelib[scale]'``); ``engine="local"`` runs the same
stages in this process without it and writes the same Parquet.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from . import audio, embed
from .checks import one_of, positive_int, positive_number, valid_audio, warn
from .errors import GenrelibError, ParameterError
from .storage import file_digest

__all__ = [
    "ENGINES",
    "OUTPUT_SCHEMA",
    "FMA_LARGE",
    "require_ray",
    "init_ray",
    "catalogue_items",
    "embed_catalogue",
    "load_catalogue",
    "augment_catalogue",
    "stage_costs",
    "pipeline_stages",
    "measure_throughput",
    "project_catalogue",
    "run_embed_cli",
]

#: Where the work runs: ``"local"`` (this process, no Ray) or ``"ray"`` (a local or remote Ray cluster).
ENGINES = ("local", "ray")

#: FMA-large (Defferrard et al., 2017): 106 574 untrimmed clips of 30 s.
FMA_LARGE = {"name": "FMA-large", "n_clips": 106_574, "clip_seconds": 30.0}

_INSTALL_HINT = "pip install 'genrelib[scale]'  (ray[data]==2.60.0, pyarrow)"
_KEY_COLUMNS = ["item_id", "source_checksum", "backend", "weights_checksum", "front_end_version", "error",
                "run_id"]


def _output_schema():
    import pyarrow as pa

    return pa.schema([
        ("item_id", pa.string()),
        ("track_id", pa.string()),
        ("genre", pa.string()),
        ("path", pa.string()),
        ("source_checksum", pa.string()),
        ("backend", pa.string()),
        ("weights_checksum", pa.string()),
        ("front_end_version", pa.string()),
        ("patch_hop_seconds", pa.float32()),
        ("n_patches", pa.int32()),
        ("embedding_dim", pa.int32()),
        ("embedding", pa.list_(pa.list_(pa.float32()))),
        ("error", pa.string()),
        ("run_id", pa.string()),
    ])


def __getattr__(name: str):
    # OUTPUT_SCHEMA needs pyarrow; built on first access so that importing this module stays light.
    if name == "OUTPUT_SCHEMA":
        return _output_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Ray: optional import and start-up
# --------------------------------------------------------------------------------------------------

def require_ray():
    """Import and return :mod:`ray` (with Ray Data), or raise a :class:`GenrelibError` saying how to install it.

    Notebook: 07_scaling_out.
    """
    # Ray reports usage statistics unless told not to; genrelib must not reach the network by itself.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise GenrelibError(f"engine='ray' needs Ray Data, which is not installed ({exc}): {_INSTALL_HINT}; "
                            "or use engine='local'") from None
    return ray


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:
        raise GenrelibError(f"catalogues are Parquet files and need pyarrow, which is not installed ({exc}): "
                            f"{_INSTALL_HINT}") from None


def init_ray(address: str | None = None, *, num_cpus: int = 2, log_to_driver: bool = False):
    """Connect to a Ray cluster, or start a private local one; a session already started is reused.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    address : str, optional
        ``"ray://head:10001"``, ``"head:6379"`` or ``"auto"``; default ``$RAY_ADDRESS``, else a new
        local cluster.
    num_cpus : int > 0
        CPUs of the *local* cluster (2 = this project's CI machine); ignored when connecting.
    log_to_driver : bool
        Echo the workers' output (TensorFlow's start-up chatter, per actor) here. Off by default: failures
        still arrive as error rows or exceptions, and every worker's log stays in Ray's session folder
        (``/tmp/ray/session_latest/logs`` on each node).

    Returns
    -------
    ray : module
        The initialised :mod:`ray`.

    Notes
    -----
    A local cluster starts without the dashboard and with usage statistics off, so nothing leaves the
    machine. Its workers import genrelib from the same folder as this process. On a real cluster,
    genrelib must be installed in the nodes' image (see ``docs/scaling.md``). On a local cluster this
    returns once every CPU is free (a new cluster reports its CPUs a moment after start, a previous job's
    actors release theirs a moment after it ends).
    """
    ray = require_ray()
    num_cpus = positive_int(num_cpus, "num_cpus")
    if ray.is_initialized():
        if ray.get_runtime_context().get_node_id() in _LOCAL_CLUSTER:
            # On our own small cluster, let a previous job's actors release their CPUs first (a shared
            # cluster is never idle, and its scheduler handles this).
            _wait_until_idle(ray)
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    options: dict[str, Any] = {"logging_level": logging.WARNING, "include_dashboard": False,
                               "log_to_driver": bool(log_to_driver)}
    if address:
        options["address"] = address
    else:
        package_parent = str(Path(__file__).resolve().parents[1])
        python_path = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
        # Workers import this very genrelib; TensorFlow backends in them log only warnings and errors.
        env_vars = {"PYTHONPATH": python_path, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        options.update(num_cpus=num_cpus, runtime_env={"env_vars": env_vars})
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        raise GenrelibError(f"cannot start or reach {where}: {exc}") from exc
    _quiet_ray_data_console()
    if not address:
        _LOCAL_CLUSTER.add(ray.get_runtime_context().get_node_id())
        _wait_until_idle(ray)
    return ray


#: Node ids of local clusters started by :func:`init_ray` (nothing else runs on them).
_LOCAL_CLUSTER: set[str] = set()


def _quiet_ray_data_console() -> None:
    # Ray Data prints an execution plan per job at INFO; the returned table carries the same facts and
    # Ray's session folder keeps the full log, so the console shows warnings only.
    for handler in logging.getLogger("ray.data").handlers:
        if type(handler).__name__ == "PlainRayHandler":
            handler.setLevel(logging.WARNING)
            handler.addFilter(_drop_false_alarms)


def _drop_false_alarms(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if "Progress bars disabled" in message:
        return False  # progress=False is a choice, not a problem
    # On a local cluster of ours, the "no available CPUs" check catches from_arrow's short metadata tasks;
    # real starvation (actors holding every CPU) cannot happen there (see _cpus_per_worker).
    return not ("does not have any available CPUs" in message and _LOCAL_CLUSTER)


# --------------------------------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------------------------------

def catalogue_items(index_or_paths: pd.DataFrame | str | os.PathLike | Iterable) -> pd.DataFrame:
    """The clips to process: ``item_id``, ``track_id``, ``genre`` (or null), absolute ``path``.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    index_or_paths : pd.DataFrame, folder or iterable of paths
        A track index (:func:`genrelib.data.load_gtzan`: ``track_id``, ``path``, ``genre``), an
        augmentation manifest (``item_id``, ``track_id``, ``path``), a folder (searched recursively for
        :data:`genrelib.audio.AUDIO_EXTENSIONS`; ids are relative paths without extension) or paths
        (ids are file stems).

    Raises
    ------
    ParameterError
        No ``path`` column, an empty selection, or two clips with the same id.
    """
    if isinstance(index_or_paths, pd.DataFrame):
        items = _items_from_frame(index_or_paths)
    elif isinstance(index_or_paths, (str, os.PathLike)) and Path(index_or_paths).is_dir():
        root = Path(index_or_paths).resolve()
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in audio.AUDIO_EXTENSIONS and p.is_file())
        items = pd.DataFrame({"item_id": [p.relative_to(root).with_suffix("").as_posix() for p in paths],
                              "path": [str(p) for p in paths]})
    elif isinstance(index_or_paths, (str, os.PathLike)):
        raise ParameterError(f"{index_or_paths}: not a folder (pass a folder, a list of paths or an index)")
    else:
        paths = [Path(p).resolve() for p in index_or_paths]
        items = pd.DataFrame({"item_id": [p.stem for p in paths], "path": [str(p) for p in paths]})
    if items.empty:
        raise ParameterError(f"no audio clips to process in {index_or_paths!r}")
    for column in ("track_id", "genre"):
        if column not in items.columns:
            items[column] = items["item_id"] if column == "track_id" else None
    duplicated = items["item_id"][items["item_id"].duplicated()].unique()
    if len(duplicated):
        raise ParameterError(f"{len(duplicated)} item ids occur more than once (e.g. {duplicated[0]!r}); "
                             "ids must be unique so that a re-run can tell clips apart")
    return items[["item_id", "track_id", "genre", "path"]].reset_index(drop=True)


def _items_from_frame(index: pd.DataFrame) -> pd.DataFrame:
    if "path" not in index.columns:
        raise ParameterError("index needs a 'path' column (from genrelib.data.load_gtzan or augment_split)")
    id_column = "item_id" if "item_id" in index.columns else "track_id"
    if id_column not in index.columns:
        raise ParameterError("index needs an 'item_id' or 'track_id' column")
    items = pd.DataFrame({"item_id": index[id_column].astype(str),
                          "path": [str(Path(p).resolve()) for p in index["path"]]})
    if "track_id" in index.columns:
        items["track_id"] = index["track_id"].astype(str).to_numpy()
    if "genre" in index.columns:
        items["genre"] = index["genre"].astype(object).where(index["genre"].notna(), None).to_numpy()
    return items


def _resolve_output(output: str | os.PathLike, filesystem=None) -> tuple[Any, str]:
    """(pyarrow filesystem, path on it): a local folder, a URI (``s3://``, ``gs://``, ...) or ``filesystem``."""
    import pyarrow.fs as pafs

    if filesystem is not None:
        return filesystem, str(output)
    text = str(output)
    if "://" in text:
        try:
            return pafs.FileSystem.from_uri(text)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... depending on the scheme
            raise ParameterError(f"output={text!r}: pyarrow cannot open this location ({exc})") from exc
    return pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())


def _parquet_files(filesystem, folder: str) -> list[str]:
    import pyarrow.fs as pafs

    info = filesystem.get_file_info(folder)
    if info.type == pafs.FileType.NotFound:
        return []
    if info.type != pafs.FileType.Directory:
        raise ParameterError(f"output={folder!r} exists and is not a folder")
    selector = pafs.FileSelector(folder, recursive=True)
    return sorted(f.path for f in filesystem.get_file_info(selector)
                  if f.type == pafs.FileType.File and f.base_name.endswith(".parquet")
                  and not f.base_name.startswith("."))


def _read_tables(filesystem, folder: str, columns: list[str] | None) -> Iterator[Any]:
    """Each readable Parquet file of the output; an unreadable one (a write cut short) is moved aside."""
    import pyarrow.parquet as pq

    for path in _parquet_files(filesystem, folder):
        try:
            yield pq.read_table(path, columns=columns, filesystem=filesystem)
        except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
            aside = f"{path}.partial"
            filesystem.move(path, aside)
            warn(f"{path}: unreadable Parquet file (an interrupted write?) moved to {aside}; "
                 f"its clips are redone ({exc})")


def _done_keys(filesystem, folder: str, identity: dict, *, retry_errors: bool) -> frozenset:
    """(item id, source checksum) of clips the output already holds for this backend identity."""
    done = set()
    for table in _read_tables(filesystem, folder, _KEY_COLUMNS):
        frame = table.to_pandas()
        same = np.ones(len(frame), dtype=bool)
        for column, value in identity.items():
            same &= (frame[column] == value).to_numpy()
        if retry_errors:
            same &= frame["error"].isna().to_numpy()
        frame = frame[same & frame["source_checksum"].notna().to_numpy()]
        done.update(zip(frame["item_id"], frame["source_checksum"]))
    return frozenset(done)


def _identity(model) -> dict:
    return {"backend": model.name, "weights_checksum": model.weights_checksum(),
            "front_end_version": model.front_end_version}


# --------------------------------------------------------------------------------------------------
# The two stages (module-level, so Ray can ship them to worker processes)
# --------------------------------------------------------------------------------------------------

def _input_schema():
    import pyarrow as pa

    return pa.schema([(name, pa.string()) for name in ("item_id", "track_id", "genre", "path")])


def _reason(exc: Exception, path: str) -> str:
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, GenrelibError) else str(exc)
    return text if path in text else f"{path}: {text}"


def _hashed_schema():
    import pyarrow as pa

    return _input_schema().append(pa.field("source_checksum", pa.string())).append(pa.field("error", pa.string()))


def _hash_batch(batch):
    """Stage 0 (CPU task): the sha256 of each file, the key that decides whether a clip is done.

    ``batch`` is a pyarrow table of :func:`_input_schema`; returns :func:`_hashed_schema` (``error`` set
    for a file that cannot be read).
    """
    import pyarrow as pa

    checksums, errors = [], []
    for path in batch.column("path").to_pylist():
        try:
            checksums.append(file_digest(path))
            errors.append(None)
        except OSError as exc:
            checksums.append(None)
            errors.append(_reason(exc, path))
    return (batch.select(_input_schema().names).append_column("source_checksum", pa.array(checksums, pa.string()))
            .append_column("error", pa.array(errors, pa.string())))


def _decode_batch(batch, *, sample_rate: int, min_duration: float):
    """Stage 1 (CPU task): decode and resample each clip to the backend's rate.

    ``batch`` is a pyarrow table of :func:`_hashed_schema`; returns it plus ``audio`` (float32 samples at
    ``sample_rate``; empty when the clip failed here or earlier, ``error`` then says why).
    """
    import pyarrow as pa

    waveforms, errors = [], []
    for path, error in zip(batch.column("path").to_pylist(), batch.column("error").to_pylist()):
        samples = np.zeros(0, dtype=np.float32)
        if error is None:
            try:
                samples = audio.load(path, sr=sample_rate, min_duration=min_duration)
            except (GenrelibError, OSError) as exc:
                error = _reason(exc, path)
        waveforms.append(samples)
        errors.append(error)
    offsets = np.concatenate([[0], np.cumsum([len(w) for w in waveforms])]).astype(np.int64)
    values = np.concatenate(waveforms) if waveforms else np.zeros(0, dtype=np.float32)
    table = batch.select(_hashed_schema().names).set_column(
        _hashed_schema().get_field_index("error"), "error", pa.array(errors, pa.string()))
    return table.append_column("audio", pa.LargeListArray.from_arrays(offsets, pa.array(values, pa.float32())))


def _blocks(table, rows: int) -> list:
    return [table.slice(start, rows) for start in range(0, table.num_rows, rows)]


def _nested_list(arrays: list[np.ndarray | None], dim: int):
    """``[n_patches][d]`` float32 lists for Parquet, from one array (or None for an error) per clip."""
    import pyarrow as pa

    counts = [0 if a is None else len(a) for a in arrays]
    flat = [a.reshape(-1) for a in arrays if a is not None and len(a)]
    values = np.concatenate(flat).astype(np.float32) if flat else np.zeros(0, dtype=np.float32)
    inner = pa.ListArray.from_arrays(np.arange(sum(counts) + 1, dtype=np.int32) * dim, pa.array(values))
    return pa.ListArray.from_arrays(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32), inner)


class _EmbedWorker:
    """Stage 2 (Ray actor, or in-process for ``engine="local"``): the model, loaded once, embeds batches.

    Each clip goes through :func:`genrelib.embed.embed_audio` as in :func:`~genrelib.embed.embed_dataset`.
    A two-stage backend (``features``/``embed_patches``, e.g. VGGish) instead gets the patches of the whole
    batch in one call, so a GPU sees full forward passes; its front end costs about 2 % of the model
    (5 ms per 30 s clip for VGGish on CPU), so it runs here, next to the model, rather than in the
    decoding tasks, which would each have to build the network to reach it.
    """

    def __init__(self, backend: str, target: str, options: dict, run_id: str):
        # A backend registered at run time in the driver is unknown in a fresh worker process.
        if embed.BACKENDS.get(backend) != target:
            embed.register_backend(backend, target)
        self.model = embed.get_backend(backend, **options)
        self.identity = _identity(self.model)
        self.run_id = run_id
        self.two_stage = hasattr(self.model, "features") and hasattr(self.model, "embed_patches")

    def __call__(self, batch):
        samples = batch.column("audio").combine_chunks()
        offsets = samples.offsets.to_numpy() - samples.offsets[0].as_py()
        values = samples.flatten().to_numpy()
        errors = batch.column("error").to_pylist()
        paths = batch.column("path").to_pylist()
        waveforms = [None if error else np.array(values[offsets[i]:offsets[i + 1]], dtype=np.float32)
                     for i, error in enumerate(errors)]
        embeddings = [None] * len(waveforms)
        if self.two_stage:
            self._embed_together(waveforms, embeddings, errors, paths)
        for i, y in enumerate(waveforms):
            if y is not None and embeddings[i] is None and errors[i] is None:
                try:
                    embeddings[i] = embed.embed_audio(y, sr=self.model.sample_rate, backend=self.model)
                except Exception as exc:  # one clip the model rejects must not stop the other 100 000
                    errors[i] = _reason(exc, paths[i])
        return self._table(batch, embeddings, errors)

    def _embed_together(self, waveforms, embeddings, errors, paths) -> None:
        """Front end per clip, then one ``embed_patches`` call over the batch; on failure, leave the clips
        to the per-clip path, which finds the culprit."""
        features = {}
        for i, y in enumerate(waveforms):
            if y is not None:
                try:
                    features[i] = np.asarray(self.model.features(valid_audio(y)), dtype=np.float32)
                except Exception as exc:
                    errors[i] = _reason(exc, paths[i])
        if not features:
            return
        try:
            output = np.asarray(self.model.embed_patches(np.concatenate(list(features.values()))), np.float32)
        except Exception:
            return
        for i, part in zip(features, np.split(output, np.cumsum([len(f) for f in features.values()])[:-1])):
            embeddings[i] = part

    def _table(self, batch, embeddings, errors):
        import pyarrow as pa

        n = batch.num_rows
        columns = {name: batch.column(name) for name in ("item_id", "track_id", "genre", "path", "source_checksum")}
        columns.update({key: pa.array([value] * n, pa.string()) for key, value in self.identity.items()})
        columns["patch_hop_seconds"] = pa.array([self.model.patch_hop_seconds] * n, pa.float32())
        columns["n_patches"] = pa.array([0 if e is None else len(e) for e in embeddings], pa.int32())
        columns["embedding_dim"] = pa.array([self.model.embedding_dim] * n, pa.int32())
        columns["embedding"] = _nested_list(embeddings, self.model.embedding_dim)
        columns["error"] = pa.array(errors, pa.string())
        columns["run_id"] = pa.array([self.run_id] * n, pa.string())
        return pa.Table.from_arrays([columns[f.name] for f in _output_schema()], schema=_output_schema())


# --------------------------------------------------------------------------------------------------
# Embedding a catalogue
# --------------------------------------------------------------------------------------------------

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
        See :func:`catalogue_items`.
    backend : str
        A name from :data:`genrelib.embed.BACKENDS` or ``"auto"``; each actor builds it once.
    output : str or PathLike
        Folder of Parquet files: a local path, a URI pyarrow understands (``s3://bucket/prefix``,
        ``gs://...``, ``hdfs://...``) or a path on ``filesystem``. Runs append; see :func:`load_catalogue`.
    engine : {"ray", "local"}
        ``"local"`` runs the same stages in this process (no Ray needed).
    address : str, optional
        Ray cluster address; default ``$RAY_ADDRESS``, else a local cluster (:func:`init_ray`).
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
        Redo every clip; the new rows supersede the old ones (see :func:`load_catalogue`).
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
    yet in the output; when none is left, no model is loaded and no job starts.
    """
    _check_options(engine=engine, batch_size=batch_size, num_workers=num_workers, num_cpus=num_cpus,
                   max_restarts=max_restarts, max_task_retries=max_task_retries,
                   num_gpus_per_worker=num_gpus_per_worker)
    items = catalogue_items(index_or_paths)
    options = dict(backend_options or {})
    name = embed.resolve_backend(backend)
    model = embed.get_backend(name, **options)
    identity = _identity(model)
    filesystem, folder = _resolve_output(output, filesystem)
    done = frozenset() if overwrite else _done_keys(filesystem, folder, identity, retry_errors=retry_errors)
    run_id = _new_run_id()
    plan = {"backend": name, "target": embed.BACKENDS[name], "options": options, "run_id": run_id,
            "sample_rate": model.sample_rate, "min_duration": model.patch_seconds, "batch_size": batch_size,
            "progress": progress}
    start = time.perf_counter()
    ray = init_ray(address, num_cpus=num_cpus) if engine == "ray" else None
    todo = _not_done(_hash(ray, items, batch_size), done)
    if todo.num_rows == 0:
        pass  # every clip is in the output already: no decoding, no model, no job
    elif engine == "local":
        _run_local(todo, filesystem, folder, **plan)
    else:
        _run_ray(ray, todo, filesystem, folder, **plan, num_workers=num_workers,
                 num_gpus_per_worker=num_gpus_per_worker, max_restarts=max_restarts,
                 max_task_retries=max_task_retries)
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
    _require_pyarrow()


def _new_run_id() -> str:
    """UTC time to the microsecond, then a random suffix: later runs sort after earlier ones."""
    now = time.time()
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}.{int(now % 1 * 1e6):06d}Z-{uuid.uuid4().hex[:8]}"


def _hash(ray, items: pd.DataFrame, batch_size: int):
    """:func:`_hash_batch` over every clip: in Ray tasks (``ray`` given) or in this process."""
    import pyarrow as pa

    table = pa.Table.from_pandas(items, schema=_input_schema(), preserve_index=False)
    if ray is None:
        return _hash_batch(table)
    rows = _decode_rows(ray, len(items), batch_size)
    hashed = ray.data.from_arrow(_blocks(table, rows)).map_batches(_hash_batch, batch_format="pyarrow",
                                                                    batch_size=rows, num_cpus=1)
    return pa.concat_tables(ray.get(hashed.to_arrow_refs())).cast(_hashed_schema())


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
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    worker = _EmbedWorker(backend, target, options, run_id)
    filesystem.create_dir(folder, recursive=True)
    for number, start in enumerate(tqdm(range(0, todo.num_rows, batch_size), disable=not progress,
                                        desc=f"embed [{backend}, local]", unit="batch")):
        decoded = _decode_batch(todo.slice(start, batch_size), sample_rate=sample_rate, min_duration=min_duration)
        # Written under a hidden name, then renamed: a batch cut short never looks finished.
        final = f"{folder}/{run_id}_{number:06d}.parquet"
        partial = f"{folder}/.{run_id}_{number:06d}.parquet.tmp"
        pq.write_table(worker(decoded), partial, filesystem=filesystem)
        filesystem.move(partial, final)


@contextlib.contextmanager
def _ray_job(ray, *, progress: bool, what_survives: str) -> Iterator[None]:
    """Ray Data's progress bars as asked for the job inside; a failed job becomes one GenrelibError saying
    what survives it."""
    context = ray.data.DataContext.get_current()
    saved = context.enable_progress_bars
    context.enable_progress_bars = progress
    try:
        yield
    except ray.exceptions.RayError as exc:
        reason = str(exc).strip().splitlines()[0][:500]
        raise GenrelibError(f"the Ray job failed ({type(exc).__name__}: {reason}); {what_survives}") from exc
    finally:
        context.enable_progress_bars = saved


def _run_ray(ray, todo, filesystem, folder: str, *, progress, **plan) -> None:
    with _ray_job(ray, progress=progress,
                  what_survives=f"batches already written stay in {folder} and a re-run resumes from them"):
        _ray_dataset(ray, todo, **plan).write_parquet(folder, filesystem=filesystem)


def _ray_dataset(ray, todo, *, backend, target, options, run_id, sample_rate, min_duration, batch_size,
                 num_workers, num_gpus_per_worker, max_restarts, max_task_retries):
    """The lazy Ray Data pipeline: hashed rows -> decode tasks -> model actor pool (not yet executed)."""
    rows = _decode_rows(ray, todo.num_rows, batch_size)
    dataset = ray.data.from_arrow(_blocks(todo, rows)).map_batches(
        _decode_batch, batch_format="pyarrow", batch_size=rows, num_cpus=1,
        fn_kwargs={"sample_rate": sample_rate, "min_duration": min_duration})
    with warnings.catch_warnings():
        # Ray 2.60 deprecates passing actor options such as max_restarts as **ray_remote_args but offers
        # no named parameter for them yet (genrelib pins ray 2.60). These options also keep Ray from
        # fusing decoding into the actors, which would serialise it behind the model.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        return dataset.map_batches(
            _EmbedWorker, batch_format="pyarrow", batch_size=batch_size,
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
    if requested is not None:
        return float(requested)
    gpus = float(ray.cluster_resources().get("GPU", 0))
    return min(1.0, gpus / num_workers) if gpus else 0.0


def _key_frame(filesystem, folder: str, columns: list[str]) -> pd.DataFrame:
    frames = [table.to_pandas() for table in _read_tables(filesystem, folder, columns)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per clip and backend identity: the latest run's (runs sort by their UTC-time id)."""
    keys = ["item_id", "backend", "weights_checksum", "front_end_version"]
    return frame.sort_values("run_id", kind="stable").drop_duplicates(keys, keep="last").reset_index(drop=True)


def _summarise(items, filesystem, folder, identity, run_id) -> pd.DataFrame:
    rows = _key_frame(filesystem, folder, [*_KEY_COLUMNS, "n_patches"])
    for column, value in identity.items():
        rows = rows[rows[column] == value]
    rows = _latest(rows)[["item_id", "source_checksum", "n_patches", "error", "run_id"]]
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


def load_catalogue(output: str | os.PathLike, *, filesystem=None, backend: str | None = None,
                   include_errors: bool = False) -> pd.DataFrame:
    """Read :func:`embed_catalogue`'s Parquet output: one row per clip, embeddings as arrays.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    output : str or PathLike
        The folder (or URI) given to :func:`embed_catalogue`.
    filesystem : pyarrow.fs.FileSystem, optional
    backend : str, optional
        Keep this backend's rows only (an output folder may hold several).
    include_errors : bool
        Keep error rows (their ``embedding`` is an empty ``(0, d)`` array).

    Returns
    -------
    pd.DataFrame
        Columns of :data:`OUTPUT_SCHEMA`; ``embedding`` holds float32 arrays [shape=(n_patches, d)].
        When a clip was embedded by several runs (changed file, ``retry_errors``), the latest row wins.
    """
    _require_pyarrow()
    filesystem, folder = _resolve_output(output, filesystem)
    tables = list(_read_tables(filesystem, folder, None))
    if not tables:
        raise GenrelibError(f"{folder}: no Parquet output here (run embed_catalogue first)")
    import pyarrow as pa

    table = pa.concat_tables(tables)
    frame = table.drop_columns(["embedding"]).to_pandas()
    frame["embedding"] = _unnest(table.column("embedding").combine_chunks(), frame)
    if backend is not None:
        frame = frame[frame["backend"] == embed.resolve_backend(backend)]
    frame = _latest(frame)
    if not include_errors:
        frame = frame[frame["error"].isna()]
    return frame.sort_values("item_id").reset_index(drop=True)


def _unnest(column, frame: pd.DataFrame) -> list[np.ndarray]:
    values = column.flatten().flatten().to_numpy()
    sizes = frame["n_patches"].to_numpy(dtype=np.int64) * frame["embedding_dim"].to_numpy(dtype=np.int64)
    # One flat buffer, cut per clip: no per-patch Python objects even for a million patches.
    pieces = np.split(values, np.cumsum(sizes)[:-1])
    return [piece.reshape(n, d) for piece, n, d in zip(pieces, frame["n_patches"], frame["embedding_dim"])]


# --------------------------------------------------------------------------------------------------
# Augmenting a catalogue
# --------------------------------------------------------------------------------------------------

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
    :func:`genrelib.augment.augment_split`, whose planning, per-track worker and manifest this function
    reuses; only the pool that runs the workers differs (Ray tasks on every CPU of the cluster instead of
    local processes). ``engine="local"`` is ``augment_split`` itself.

    Parameters
    ----------
    index, split, config, seed, track_ids, include_original, overwrite, progress
        As for :func:`~genrelib.augment.augment_split`; only ``split.train`` is ever augmented.
    cache_dir : path, optional
        The augmentation cache (default ``$GENRELIB_CACHE/augment``); on a cluster, a folder every node
        mounts at the same path.
    engine : {"ray", "local"}
    address, num_cpus
        As for :func:`init_ray`.
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
    from . import augment
    from .storage import cache_dir as default_cache_dir

    one_of(engine, ENGINES, "engine")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ParameterError(f"max_retries={max_retries!r} must be an integer >= 0")
    start = time.perf_counter()
    if engine == "local":
        manifest = augment.augment_split(index, split, config=config, cache_dir=cache_dir, seed=seed,
                                         track_ids=track_ids, include_original=include_original,
                                         overwrite=overwrite, progress=progress, on_error="report")
        return _augment_report(manifest, n_tasks=None, start=start)
    config = augment._resolve_config(config)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed={seed!r} must be a non-negative integer")
    tracks = augment._training_tracks(index, split, track_ids)  # a non-training track raises LeakageError
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir("augment")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenrelibError(f"{root}: cannot create the augmentation cache ({exc})") from exc
    plan = augment._plan(tracks, config=config, seed=seed, root=root)
    paths = dict(zip(tracks["track_id"], tracks["path"]))
    tasks = [{"track_id": track_id, "path": str(paths[track_id]), "items": json.dumps(todo)}
             for track_id, items in plan.items()
             if (todo := [_item_fields(item) for item in items if overwrite or not item.path.exists()])]
    errors = _augment_on_ray(tasks, sample_rate=config.sample_rate, address=address, num_cpus=num_cpus,
                             max_retries=max_retries, progress=progress) if tasks else {}
    manifest = augment._manifest(tracks, plan, errors, seed=seed, config=config, protocol=split.protocol,
                                 include_original=include_original)
    augment.assert_no_leakage(split, manifest)
    return _augment_report(manifest, n_tasks=len(tasks), start=start)


def _item_fields(item) -> dict:
    return {"item_id": item.item_id, "track_id": item.track_id, "genre": item.genre, "method": item.method,
            "copy": item.copy, "params": item.params, "path": str(item.path)}


def _augment_batch(batch: dict, *, sample_rate: int) -> dict:
    """CPU task: :func:`genrelib.augment`'s per-track worker on each source; an error never stops the job."""
    from . import augment

    errors = []
    for path, fields in zip(batch["path"], batch["items"]):
        items = [augment._Item(**{**f, "path": Path(f["path"])}) for f in json.loads(fields)]
        try:
            error = augment._augment_source(str(path), items, sample_rate)
        except Exception as exc:  # a cache that cannot be written, a crash in the DSP: one row, not the job
            error = _reason(exc, str(path))
        errors.append(error)
    return {"track_id": np.asarray(batch["track_id"]), "error": np.asarray(errors, dtype=object)}


def _augment_on_ray(tasks: list[dict], *, sample_rate, address, num_cpus, max_retries, progress) -> dict:
    """Run every task on Ray; return ``{track_id: error}`` for the sources that failed."""
    ray = init_ray(address, num_cpus=num_cpus)
    blocks = min(len(tasks), 4 * int(ray.cluster_resources().get("CPU", 1)))
    with _ray_job(ray, progress=progress, what_survives="finished items stay cached and a re-run resumes"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")  # see _ray_dataset
            dataset = ray.data.from_items(tasks, override_num_blocks=blocks).map_batches(
                _augment_batch, batch_size=1, num_cpus=1, max_retries=max_retries,
                fn_kwargs={"sample_rate": sample_rate})
        rows = dataset.take_all()
    return {row["track_id"]: row["error"] for row in rows if row["error"]}


def _augment_report(manifest: pd.DataFrame, *, n_tasks: int | None, start: float) -> pd.DataFrame:
    failed = manifest.loc[manifest["error"].notna()].drop_duplicates("track_id")
    if len(failed):
        warn(f"{len(failed)} source clips could not be augmented (error column of the manifest); "
             f"first: {failed['error'].iloc[0]}")
    manifest.attrs.update(n_sources=int(manifest["track_id"].nunique()), n_tasks=n_tasks,
                          n_errors=len(failed), seconds=time.perf_counter() - start)
    return manifest


# --------------------------------------------------------------------------------------------------
# Measuring and projecting throughput
# --------------------------------------------------------------------------------------------------

def stage_costs(index_or_paths, *, backend: str = "auto", n_clips: int = 4,
                backend_options: dict | None = None) -> pd.DataFrame:
    """Seconds each stage costs per clip, measured one clip at a time in this process.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    index_or_paths : as for :func:`catalogue_items`
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
    module_name, attribute = embed.BACKENDS[embed.resolve_backend(backend)].split(":")
    factory = getattr(importlib.import_module(module_name), attribute)
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
    """The stages of :func:`embed_catalogue`, where each runs, and (given :func:`stage_costs`) its cost.

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
    import tempfile

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


def _wait_until_idle(ray, timeout: float = 10.0) -> None:
    """Wait until every CPU is free: a new cluster reports its CPUs a moment after start, and a finished
    job's actors release theirs a moment after it ends."""
    deadline = time.monotonic() + timeout
    total = ray.cluster_resources().get("CPU", 0)
    while ray.available_resources().get("CPU", 0) < total and time.monotonic() < deadline:
        time.sleep(0.2)


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


# --------------------------------------------------------------------------------------------------
# CLI helpers (the ``embed`` verb delegates ``--engine ray`` here)
# --------------------------------------------------------------------------------------------------

def run_embed_cli(args) -> int:
    """``genrelib embed --engine ray``: embed files or a GTZAN root into Parquet; one summary line.

    ``args`` carries the ``embed`` verb's options: ``files`` (else every clip of ``--data``),
    ``backend``, ``output_dir`` (default ``$GENRELIB_CACHE/catalogue``), ``overwrite``, ``quiet``,
    ``address``, ``num_workers``. Exit status 0 when every clip is in the output, 1 when some failed or
    nothing was left to do.
    """
    from .cli._types import clips_to_embed
    from .storage import cache_dir

    if getattr(args, "batch_size", None):
        raise ParameterError("--batch-size sets the forward pass of --engine local; with --engine ray each actor "
                             "uses its backend's own (VGGish: 64 patches) and gets 16 clips at a time")
    result = embed_catalogue(clips_to_embed(args), backend=args.backend,
                             output=args.output_dir or cache_dir("catalogue"), address=args.address,
                             num_workers=args.num_workers, overwrite=args.overwrite, progress=not args.quiet)
    attrs = result.attrs
    if attrs["n_new"] == 0 and attrs["n_errors"] == 0:
        print(f"nothing to do: all {attrs['n_items']} clips are already in {attrs['output']} (--overwrite redoes them)")
        return 1
    print(f"{attrs['n_items']} clips: {attrs['n_new']} embedded now, {attrs['n_skipped']} already in the output, "
          f"{attrs['n_errors']} errors; backend {attrs['backend']} on Ray ({attrs['num_workers']} model workers), "
          f"{attrs['seconds']:.1f} s -> {attrs['output']}")
    for error in result.loc[result["error"].notna(), "error"]:
        print(f"genrelib embed: error: {error}", file=sys.stderr)
    return 1 if attrs["n_errors"] else 0
