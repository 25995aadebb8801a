"""Official VGGish weights -> the Keras cache: from the slim checkpoint or a SavedModel (TF Hub / Kaggle).

Notebook: 03_vggish_features.

Every variable is checked (names, shapes, finite values) before anything is written; the cache is then
replaced atomically, so a failed conversion leaves it exactly as it was::

    genrelib weights vggish --download                        # official checkpoint, size and sha256 checked
    genrelib weights vggish --from-checkpoint vggish_model.ckpt
    genrelib weights vggish --from-hub https://tfhub.dev/google/vggish/1   # or a local SavedModel folder
    genrelib weights vggish --pca vggish_pca_params.npz       # optional post-processing (off by default)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import WeightsError
from ..storage import atomic_path, file_digest
from .network import VGGish, assign_official_values, official_variables
from .pca import load_pca_params, save_pca
from .weights import (CHECKPOINT_BYTES, CHECKPOINT_SHA256, CHECKPOINT_URL, CONVERTED_FORMAT, HUB_HANDLE,
                      converted_weights_path, size_mismatch)

__all__ = ["convert_checkpoint", "convert_saved_model"]


def _source_digest(path: Path) -> str:
    """SHA-256 of a single file, or of every file of a V2 checkpoint prefix / SavedModel folder."""
    import hashlib

    if path.is_file():
        return file_digest(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else \
        sorted(p for p in path.parent.glob(path.name + ".*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(path if path.is_dir() else path.parent).as_posix().encode())
        digest.update(bytes.fromhex(file_digest(file)))
    return digest.hexdigest()


def _check_variables(shapes: dict[str, tuple], *, source: str) -> None:
    """Raise one :class:`WeightsError` listing every missing or wrongly shaped official variable."""
    problems = []
    for name, expected in official_variables().items():
        if name not in shapes:
            problems.append(f"{name}: missing")
        elif tuple(shapes[name]) != expected:
            problems.append(f"{name}: shape {tuple(shapes[name])}, expected {expected}")
    if problems:
        raise WeightsError(f"{source}: not VGGish weights ({len(problems)} problem(s)); nothing was converted:\n  "
                           + "\n  ".join(problems))


def _check_values(values: dict[str, np.ndarray], *, source: str) -> None:
    bad = [name for name, value in values.items() if not np.all(np.isfinite(value))]
    if bad:
        raise WeightsError(f"{source}: NaN or infinite values in {', '.join(bad)}; nothing was converted")


def convert_checkpoint(
    path: str | os.PathLike,
    *,
    sha256: str | None = CHECKPOINT_SHA256,
    pca: str | os.PathLike | None = None,
    folder: str | os.PathLike | None = None,
) -> Path:
    """Convert the official slim checkpoint into the Keras weights cache.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    path : path
        ``vggish_model.ckpt`` (a single file), or the prefix of a TF checkpoint (``.index`` + ``.data``),
        holding ``vggish/conv1/weights``, ``vggish/conv1/biases``, ..., ``vggish/fc2/biases``.
    sha256 : str or None
        Expected SHA-256 of the file (default: the pinned official one, whose size, 291 108 469 bytes, is
        checked first); ``None`` accepts any checkpoint with the right variables (e.g. one you fine-tuned).
    pca : path, optional
        ``vggish_pca_params.npz`` to cache as well (see :func:`convert_pca`).
    folder : path, optional
        Cache folder; default ``cache_dir("weights")``.

    Returns
    -------
    Path
        The converted ``vggish.weights.h5``.

    Raises
    ------
    WeightsError
        Checksum mismatch, unreadable or truncated file, missing or wrongly shaped variables. The cache is
        left exactly as it was.
    """
    path = Path(path)
    if not (path.is_file() or Path(f"{path}.index").is_file()):
        raise WeightsError(f"{path}: no such checkpoint file (expected vggish_model.ckpt from {CHECKPOINT_URL})")
    pinned_size = CHECKPOINT_BYTES if sha256 == CHECKPOINT_SHA256 and path.is_file() else None
    if mismatch := size_mismatch(path, sha256=sha256, n_bytes=pinned_size):
        raise WeightsError(f"{mismatch}; download it again, or pass sha256=None (CLI: --sha256 none) to convert "
                           f"another VGGish checkpoint; the cache was not touched")
    digest = _source_digest(path)
    if sha256 is not None and digest != sha256:
        raise WeightsError(f"{path}: sha256 {digest} differs from the expected {sha256} (a truncated or different "
                           f"file?); download it again, or pass sha256=None (CLI: --sha256 none) to convert "
                           f"another VGGish checkpoint; the cache was not touched")
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(path))
        _check_variables(reader.get_variable_to_shape_map(), source=str(path))
        values = {name: np.asarray(reader.get_tensor(name), dtype=np.float32) for name in official_variables()}
    except WeightsError:
        raise
    except Exception as exc:  # TF raises DataLossError, NotFoundError, OpError... for damaged files
        raise WeightsError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {_first_line(exc)}); the "
                           f"file may be truncated; the cache was not touched") from exc
    return _save_converted(values, source=str(path), source_sha256=digest, pca=pca, folder=folder)


def convert_saved_model(
    handle: str | os.PathLike = HUB_HANDLE,
    *,
    pca: str | os.PathLike | None = None,
    folder: str | os.PathLike | None = None,
) -> Path:
    """Convert a VGGish SavedModel (TF Hub / Kaggle handle or local folder) into the Keras weights cache.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    handle : str or path
        ``https://tfhub.dev/google/vggish/1`` (downloaded by ``tensorflow_hub`` into its own cache) or a
        folder holding ``saved_model.pb``. Its variables are copied one by one, matched by their names
        (``vggish/conv1/weights:0``, ...).
    pca, folder
        As for :func:`convert_checkpoint`.

    Returns
    -------
    Path
        The converted ``vggish.weights.h5``.
    """
    local = Path(handle).expanduser()
    try:
        if local.is_dir():
            import tensorflow as tf

            obj, location = tf.saved_model.load(str(local)), local
        elif "://" in str(handle):
            import tensorflow_hub as hub

            location = Path(hub.resolve(str(handle)))
            obj = hub.load(str(location))
        else:
            raise WeightsError(f"{handle}: neither a folder nor a TF Hub / Kaggle handle (https://...)")
        values = _saved_model_values(obj, source=str(handle))
    except WeightsError:
        raise
    except Exception as exc:  # tf.saved_model.load / hub raise OSError, ValueError, OpError...
        raise WeightsError(f"{handle}: cannot load as a SavedModel ({type(exc).__name__}: {_first_line(exc)}); "
                           f"the cache was not touched") from exc
    return _save_converted(values, source=str(handle), source_sha256=_source_digest(location), pca=pca,
                           folder=folder)


def _saved_model_values(obj, *, source: str) -> dict[str, np.ndarray]:
    """Official name -> value of every variable a loaded SavedModel tracks."""
    import tensorflow as tf

    variables = getattr(obj, "variables", None)
    if not variables:
        variables = [v for v in tf.train.TrackableView(obj).descendants() if isinstance(v, tf.Variable)]
    found: dict[str, list] = {}
    for variable in variables:
        name = variable.name.split(":")[0]
        name = name[name.find("vggish/"):] if "vggish/" in name else name
        found.setdefault(name, []).append(variable)
    duplicated = [name for name, items in found.items() if len(items) > 1 and name in official_variables()]
    if duplicated:
        raise WeightsError(f"{source}: several variables named {', '.join(duplicated)}; cannot tell which to copy")
    _check_variables({name: tuple(items[0].shape) for name, items in found.items()}, source=source)
    return {name: found[name][0].numpy().astype(np.float32) for name in official_variables()}


def _save_converted(values, *, source: str, source_sha256: str, pca, folder) -> Path:
    """Validate everything, then write weights (and PCA) atomically; on any error nothing changes."""
    import h5py

    _check_values(values, source=source)
    pca_arrays = load_pca_params(pca) if pca is not None else None
    model = VGGish()
    assign_official_values(model, values)
    target = converted_weights_path(folder)
    with atomic_path(target) as tmp:
        model.save_weights(tmp)
        with h5py.File(tmp, "a") as handle:
            handle.attrs["genrelib_format"] = CONVERTED_FORMAT
            handle.attrs["genrelib_source"] = source
            handle.attrs["genrelib_source_sha256"] = source_sha256
    if pca_arrays is not None:
        save_pca(pca_arrays, folder)
    return target


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""
