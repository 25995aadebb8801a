"""The clips a :mod:`genrelib.scale` job processes: from a track index, an augmentation manifest, a folder or
a list of paths, with ids unique so that a re-run can tell them apart.

Notebook: 07_scaling_out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from .. import audio
from ..errors import ParameterError

__all__ = ["catalogue_items"]


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
