"""The clips of a fine-tuning run and their on-disk caches: log-mel patches and the frozen bottom's outputs.

Notebook: 06_fine_tuning.

The front end runs once per clip (log-mel patches cached, keyed by the audio's content, front end and sample
rate), and so does the frozen bottom of a cut backbone (its outputs cached, keyed by the weights and the cut),
whatever the number of epochs, folds and seeds. Every cache file is written atomically.
"""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..checks import positive_int
from ..errors import DataError, GenrelibError, ParameterError
from ..storage import atomic_save_npz, cache_dir, file_digest, library_versions, params_key
from ..train import check_clip_table
from .backbones import Backbone, front_end_only
from .cut import cut_description

__all__ = ["FINETUNE_VERSION", "item_table", "patch_dataset", "load_patches"]

SIDES = ("train", "valid", "test")

#: Changes whenever this module would compute other patches, frozen-layer outputs or fine-tuned weights for
#: the same inputs; part of every cache key and run key of fine-tuning.
FINETUNE_VERSION = "finetune-1"


def item_table(split, index: pd.DataFrame, *, augmented: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every clip one fine-tuning run uses, with its side: the split's tracks plus augmented training copies.

    Notebook: 06_fine_tuning.

    Parameters
    ----------
    split : genrelib.data.Split
    index : pd.DataFrame
        Track index (:func:`genrelib.data.load_gtzan`): ``track_id``, ``genre``, ``path``.
    augmented : pd.DataFrame, optional
        Augmentation manifest of ``split`` (:func:`genrelib.augment.augment_split`); its ``"original"`` rows
        are skipped (the originals come from ``index``).

    Returns
    -------
    pd.DataFrame
        ``item_id``, ``track_id``, ``genre``, ``method``, ``side`` ({"train", "valid", "test"}), ``path``.

    Raises
    ------
    DataError
        A track of the split is missing from the index, or an augmented copy failed.
    LeakageError
        An augmented copy derives from a validation or test track.
    """
    if not {"track_id", "genre", "path"} <= set(index.columns):
        raise ParameterError("index needs 'track_id', 'genre' and 'path' columns (genrelib.data.load_gtzan)")
    by_id = index.set_index("track_id")
    rows = []
    for side in SIDES:
        for track_id in getattr(split, side):
            if track_id not in by_id.index:
                raise DataError(f"track {track_id} ({side} side of split {split.protocol!r}) is not in the index")
            rows.append({"item_id": track_id, "track_id": track_id, "genre": by_id.at[track_id, "genre"],
                         "method": "original", "side": side, "path": str(by_id.at[track_id, "path"])})
    table = pd.DataFrame(rows)
    if augmented is not None and len(augmented):
        copies = augmented[augmented["method"] != "original"]
        failed = copies[copies["path"].isna()]
        if len(failed):
            raise DataError(f"{len(failed)} augmented clip(s) have no audio, e.g. {failed['item_id'].iloc[0]}: "
                            f"{failed['error'].iloc[0] if 'error' in failed else 'see the manifest'}")
        copies = copies.assign(side="train", path=copies["path"].astype(str))
        table = pd.concat([table, copies[list(table.columns)]], ignore_index=True)
    return check_clip_table(split, table)


def patches_key(backbone: Backbone, audio_digest: str) -> str:
    from .. import audio

    return params_key({"audio": audio_digest, "front_end": backbone.front_end_version,
                       "sample_rate": backbone.sample_rate, "finetune": FINETUNE_VERSION,
                       **audio.decoding_versions()})


def patches_folder(backbone: Backbone, *, root: str | os.PathLike | None = None) -> Path:
    """Where one front end's cached log-mel patches live (``<root>/<front_end_version>``)."""
    return (Path(root) if root else cache_dir("patches")) / backbone.front_end_version


def features_folder(backbone: Backbone, bottom) -> Path:
    """Where the frozen bottom's cached outputs live: keyed by the backbone's weights and the cut."""
    return cache_dir("finetune_features", backbone.name,
                     params_key({"weights": backbone.weights_checksum, "cut": cut_description(bottom),
                                 "finetune": FINETUNE_VERSION, **library_versions("tensorflow", "keras")}))


def patch_dataset(table: pd.DataFrame, *, backbone: Backbone | str = "musicnn-msd",
                  cache_dir_: str | os.PathLike | None = None, overwrite: bool = False,
                  progress: bool = True) -> pd.DataFrame:
    """Log-mel patches of every clip, computed once and cached on disk.

    Notebook: 06_fine_tuning.

    Parameters
    ----------
    table : pd.DataFrame
        Rows with ``path`` (and ``item_id``): :func:`item_table`, a track index or an augmentation manifest.
    backbone : Backbone or str
        Whose front end (the musicnn networks share one; VGGish has its own).
    cache_dir_ : path, optional
        Cache root, default ``cache_dir("patches")``; one ``<front_end_version>/<key>.npz`` per clip holding
        ``patches`` [shape=(n_patches, *patch_shape)] float32, ``key`` hashing the audio file's sha256, the
        front end and the sample rate.
    overwrite : bool
        Recompute cached clips.
    progress : bool
        A tqdm bar.

    Returns
    -------
    pd.DataFrame
        ``table`` plus ``patches_path`` and ``n_patches``.

    Raises
    ------
    GenrelibError
        After the pass (finished clips stay cached), listing every file that could not be read or is shorter
        than one patch.
    """
    from tqdm.auto import tqdm

    from .. import audio

    if "path" not in table.columns:
        raise ParameterError("table needs a 'path' column")
    if isinstance(backbone, str):
        backbone = front_end_only(backbone)
    folder = patches_folder(backbone, root=cache_dir_)
    paths = [Path(p) for p in table["path"]]
    digests = list(table["audio_sha256"]) if "audio_sha256" in table.columns else [None] * len(paths)

    def compute(job: tuple[Path, str | None]) -> tuple[Path | None, int, str | None]:
        path, digest = job
        try:
            target = folder / f"{patches_key(backbone, digest or file_digest(path))}.npz"
            if target.exists() and not overwrite:
                with np.load(target) as stored:
                    return target, int(stored["patches"].shape[0]), None
            y = audio.load(path, sr=backbone.sample_rate, min_duration=backbone.patch_seconds)
            patches = backbone.patches(y)
            atomic_save_npz(target, patches=patches)
            return target, len(patches), None
        except (GenrelibError, OSError) as exc:
            return None, 0, str(exc) if str(path) in str(exc) else f"{path}: {exc}"  # audio errors name the file

    # Front ends are numpy/librosa code that mostly holds the GIL; one worker overlaps decoding with it.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        results = list(tqdm(pool.map(compute, zip(paths, digests)), total=len(paths), disable=not progress, unit="clip",
                            desc=f"log-mel patches [{backbone.front_end_version}]"))
    failed = [error for _, _, error in results if error]
    if failed:
        raise GenrelibError(f"{len(failed)} of {len(paths)} clips have no patches (the others are cached):\n  "
                            + "\n  ".join(failed))
    result = table.copy()
    result["patches_path"] = [str(target) for target, _, _ in results]
    result["n_patches"] = [count for _, count, _ in results]
    return result


def load_patches(table: pd.DataFrame, *, n_patches: int, pad_mode: str = "repeat") -> np.ndarray:
    """The cached patches of :func:`patch_dataset`'s rows, as the end-to-end model's input.

    Notebook: 06_fine_tuning.

    Parameters
    ----------
    table : pd.DataFrame
        :func:`patch_dataset`'s result (``patches_path``).
    n_patches : int > 0
        Patches per clip the model takes (``model.input.shape[1]``); longer clips keep their central patches,
        shorter ones repeat (``pad_mode``, as :func:`genrelib.model.fit_patches`).

    Returns
    -------
    np.ndarray [shape=(n_clips, n_patches, *patch_shape)], float32
    """
    if "patches_path" not in table.columns:
        raise ParameterError("table needs a 'patches_path' column (from genrelib.finetune.patch_dataset)")
    return stack_clips(list(table["patches_path"]), ["patches"], n_patches=positive_int(n_patches, "n_patches"),
                  pad_mode=pad_mode)[0]


#: Patches per forward pass of the frozen bottom (bounds memory; CPU time per patch barely changes).
BOTTOM_BATCH = 8


def predict(model, inputs: Sequence[np.ndarray], *, batch_size: int) -> list[np.ndarray]:
    """``model.predict`` (inference mode: no dropout, batch norm on its moving statistics) on one array per model
    input [shape=(n, ...)]; one float32 array per model output [shape=(n, ...)]."""
    from ..quiet import filtered_native_stderr

    with filtered_native_stderr():  # op determinism's harmless tf.data NodeDef line, as in genrelib.train
        outputs = model.predict(list(inputs) if len(inputs) > 1 else inputs[0], batch_size=batch_size, verbose=0)
    return [np.asarray(output, np.float32) for output in (outputs if isinstance(outputs, list) else [outputs])]


def run_bottom(bottom, patches: np.ndarray) -> list[np.ndarray]:
    """The frozen bottom on one clip's patches [shape=(n_patches, *patch_shape)]: one array per cut tensor.

    ``predict_on_batch`` on chunks of ``BOTTOM_BATCH``, not ``model.predict``: the same compiled function on the same
    batches (byte-equal outputs) without the dataset ``predict`` builds on every call, which cost half the time of a
    10-patch clip (0.42 against 0.23 s per musicnn clip, measured on 2 cores).
    """
    chunks = [bottom.predict_on_batch(patches[start:start + BOTTOM_BATCH])
              for start in range(0, len(patches), BOTTOM_BATCH)]
    per_chunk = [chunk if isinstance(chunk, (list, tuple)) else [chunk] for chunk in chunks]
    return [np.concatenate([np.asarray(chunk[i], np.float32) for chunk in per_chunk])
            for i in range(len(per_chunk[0]))]


def bottom_features(table: pd.DataFrame, *, backbone: Backbone, bottom, progress: bool) -> list[Path]:
    """Outputs of the frozen bottom for every clip, cached as ``cut_<i>`` arrays; returns their paths."""
    from tqdm.auto import tqdm

    folder = features_folder(backbone, bottom)
    targets = []
    for patches_path in tqdm(table["patches_path"], disable=not progress, unit="clip",
                             desc=f"frozen layers [{backbone.name}]"):
        target = folder / Path(patches_path).name
        if not target.exists():
            with np.load(patches_path) as stored:
                outputs = run_bottom(bottom, stored["patches"])
            atomic_save_npz(target, **{f"cut_{i}": array for i, array in enumerate(outputs)})
        targets.append(target)
    return targets


def _fit_length(array: np.ndarray, n_patches: int, pad_mode: str) -> np.ndarray:
    """genrelib.model.fit_patches on any per-patch shape (centre crop, or repeat / zero padding)."""
    from ..model import fit_patches

    flat = array.reshape(len(array), -1)
    return fit_patches(flat, n_patches=n_patches, pad_mode=pad_mode).reshape(n_patches, *array.shape[1:])


def stack_clips(paths: Sequence, keys: Sequence[str], *, n_patches: int, pad_mode: str) -> list[np.ndarray]:
    """One array per key [shape=(n_items, n_patches, ...)] from per-clip .npz files."""
    columns: list[list[np.ndarray]] = [[] for _ in keys]
    for path in paths:
        with np.load(path) as stored:
            for column, key in zip(columns, keys):
                column.append(_fit_length(stored[key], n_patches, pad_mode))
    return [np.stack(column) for column in columns]


def embed_clips(top, inputs: list[np.ndarray], *, batch_patches: int = 256) -> np.ndarray:
    """``top`` on every patch of every clip: [shape=(n_items, n_patches, d)] (inference mode)."""
    n_items, n_patches = inputs[0].shape[:2]
    flat = [x.reshape(n_items * n_patches, *x.shape[2:]) for x in inputs]
    return predict(top, flat, batch_size=batch_patches)[0].reshape(n_items, n_patches, -1)
