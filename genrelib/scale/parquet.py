"""The Parquet side of :mod:`genrelib.scale`: the row schemas, where the output lives (a local folder or any
pyarrow filesystem), which clips it already holds, atomic writes and :func:`load_catalogue`.

Notebook: 07_scaling_out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from .. import embed
from ..checks import warn
from ..errors import GenrelibError, ParameterError
from .session import INSTALL_HINT

__all__ = [
    "KEY_COLUMNS",
    "output_schema",
    "input_schema",
    "hashed_schema",
    "require_pyarrow",
    "resolve_output",
    "read_tables",
    "done_keys",
    "write_atomically",
    "nested_list",
    "latest_rows",
    "key_frame",
    "load_catalogue",
]

#: The columns that say which clip a row holds, for which backend identity, from which run, and whether it failed.
KEY_COLUMNS = ["item_id", "source_checksum", "backend", "weights_checksum", "front_end_version", "error", "run_id"]


def output_schema():
    """One row per clip: ids, source sha256, backend identity, the ``[n_patches][d]`` embedding, error, run id."""
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


def input_schema():
    """The clips to process, as :func:`genrelib.scale.catalogue_items` lists them."""
    import pyarrow as pa

    return pa.schema([(name, pa.string()) for name in ("item_id", "track_id", "genre", "path")])


def hashed_schema():
    """:func:`input_schema` plus each file's ``source_checksum`` and an ``error`` for a file not read."""
    import pyarrow as pa

    return input_schema().append(pa.field("source_checksum", pa.string())).append(pa.field("error", pa.string()))


def require_pyarrow() -> None:
    """Raise a :class:`GenrelibError` saying how to install pyarrow when it is missing."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:
        raise GenrelibError(f"catalogues are Parquet files and need pyarrow, which is not installed ({exc}): "
                            f"{INSTALL_HINT}") from None


def resolve_output(output: str | os.PathLike, filesystem=None) -> tuple[Any, str]:
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


def read_tables(filesystem, folder: str, columns: list[str] | None) -> Iterator[Any]:
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


def done_keys(filesystem, folder: str, identity: dict, *, retry_errors: bool) -> frozenset:
    """(item id, source checksum) of clips the output already holds for this backend identity."""
    done = set()
    for table in read_tables(filesystem, folder, KEY_COLUMNS):
        frame = table.to_pandas()
        same = np.ones(len(frame), dtype=bool)
        for column, value in identity.items():
            same &= (frame[column] == value).to_numpy()
        if retry_errors:
            same &= frame["error"].isna().to_numpy()
        frame = frame[same & frame["source_checksum"].notna().to_numpy()]
        done.update(zip(frame["item_id"], frame["source_checksum"]))
    return frozenset(done)


def write_atomically(table, filesystem, folder: str, name: str) -> None:
    """Write ``table`` as ``<folder>/<name>.parquet`` under a hidden name, then rename it: a write cut short
    never looks finished."""
    import pyarrow.parquet as pq

    partial = f"{folder}/.{name}.parquet.tmp"
    pq.write_table(table, partial, filesystem=filesystem)
    filesystem.move(partial, f"{folder}/{name}.parquet")


def nested_list(arrays: list[np.ndarray | None], dim: int):
    """``[n_patches][d]`` float32 lists for Parquet, from one array (or None for an error) per clip."""
    import pyarrow as pa

    counts = [0 if a is None else len(a) for a in arrays]
    flat = [a.reshape(-1) for a in arrays if a is not None and len(a)]
    values = np.concatenate(flat).astype(np.float32) if flat else np.zeros(0, dtype=np.float32)
    inner = pa.ListArray.from_arrays(np.arange(sum(counts) + 1, dtype=np.int32) * dim, pa.array(values))
    return pa.ListArray.from_arrays(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32), inner)


def key_frame(filesystem, folder: str, columns: list[str]) -> pd.DataFrame:
    """``columns`` of every row in the output, in one frame (empty when there is no output yet)."""
    frames = [table.to_pandas() for table in read_tables(filesystem, folder, columns)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def latest_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per clip and backend identity: the latest run's (runs sort by their UTC-time id)."""
    keys = ["item_id", "backend", "weights_checksum", "front_end_version"]
    return frame.sort_values("run_id", kind="stable").drop_duplicates(keys, keep="last").reset_index(drop=True)


def load_catalogue(output: str | os.PathLike, *, filesystem=None, backend: str | None = None,
                   include_errors: bool = False) -> pd.DataFrame:
    """Read :func:`~genrelib.scale.embed_catalogue`'s Parquet output: one row per clip, embeddings as arrays.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    output : str or PathLike
        The folder (or URI) given to :func:`~genrelib.scale.embed_catalogue`.
    filesystem : pyarrow.fs.FileSystem, optional
    backend : str, optional
        Keep this backend's rows only (an output folder may hold several).
    include_errors : bool
        Keep error rows (their ``embedding`` is an empty ``(0, d)`` array).

    Returns
    -------
    pd.DataFrame
        Columns of :data:`~genrelib.scale.OUTPUT_SCHEMA`; ``embedding`` holds float32 arrays
        [shape=(n_patches, d)]. When a clip was embedded by several runs (changed file, ``retry_errors``),
        the latest row wins.
    """
    require_pyarrow()
    filesystem, folder = resolve_output(output, filesystem)
    tables = list(read_tables(filesystem, folder, None))
    if not tables:
        raise GenrelibError(f"{folder}: no Parquet output here (run embed_catalogue first)")
    import pyarrow as pa

    table = pa.concat_tables(tables)
    frame = table.drop_columns(["embedding"]).to_pandas()
    frame["embedding"] = _unnest(table.column("embedding").combine_chunks(), frame)
    if backend is not None:
        frame = frame[frame["backend"] == embed.resolve_backend(backend)]
    frame = latest_rows(frame)
    if not include_errors:
        frame = frame[frame["error"].isna()]
    return frame.sort_values("item_id").reset_index(drop=True)


def _unnest(column, frame: pd.DataFrame) -> list[np.ndarray]:
    values = column.flatten().flatten().to_numpy()
    sizes = frame["n_patches"].to_numpy(dtype=np.int64) * frame["embedding_dim"].to_numpy(dtype=np.int64)
    # One flat buffer, cut per clip: no per-patch Python objects even for a million patches.
    pieces = np.split(values, np.cumsum(sizes)[:-1])
    return [piece.reshape(n, d) for piece, n, d in zip(pieces, frame["n_patches"], frame["embedding_dim"])]
