"""VGGish's PCA post-processing: AudioSet's release format (whitened, clipped, 8-bit) of the embeddings.

Notebook: 03_vggish_features.

Optional and off by default: genre classification works on the raw float embeddings. The parameters
(``vggish_pca_params.npz``) are checked when read and cached beside the converted weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ParameterError, WeightsError
from ..storage import atomic_save_npz, cache_dir
from .network import EMBEDDING_SIZE
from .weights import download_checked, pca_params_path

__all__ = ["PCA_URL", "PCA_SHA256", "PCA_BYTES", "download_pca", "load_pca_params", "convert_pca", "postprocess"]

PCA_URL = "https://storage.googleapis.com/audioset/vggish_pca_params.npz"
# As for the checkpoint, Google publishes no checksum: this SHA-256 is the one third parties pin for the
# file at PCA_URL, and the size is that of the file with this digest; neither is Google's own figure.
PCA_SHA256 = "4d878af3e306defbfb37095365aa7e5a6cecb86bad13e859e626151c4e6a8b9d"
PCA_BYTES = 73_020

# Post-processing quantises each whitened component from [-2, 2] into 0..255.
_QUANTIZE_MIN, _QUANTIZE_MAX = -2.0, 2.0


def download_pca(dest: str | os.PathLike | None = None, *, url: str = PCA_URL, force_overwrite: bool = False,
                 progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``vggish_pca_params.npz``, checked against the pinned size and SHA-256; then :func:`convert_pca`.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    dest : path, optional
        Target file; default ``cache_dir("downloads")/vggish_pca_params.npz`` (73 020 bytes).
    url : str
        Source (tests point it at a local server); whatever it serves must be the pinned file.
    force_overwrite, progress, timeout
        As for :func:`genrelib.vggish.download_checkpoint`.

    Returns
    -------
    Path
        ``dest``, verified. A mismatch raises :class:`ChecksumError`, a network failure :class:`DownloadError`.
    """
    dest = Path(dest) if dest else cache_dir("downloads") / "vggish_pca_params.npz"
    return download_checked(url, dest, sha256=PCA_SHA256, n_bytes=PCA_BYTES, force_overwrite=force_overwrite,
                            progress=progress, timeout=timeout)


def load_pca_params(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read and check ``vggish_pca_params.npz``.

    Returns
    -------
    (eigen_vectors, means) : (np.ndarray [shape=(128, 128)], np.ndarray [shape=(128,)]), float64
    """
    path = Path(path)
    try:
        with np.load(path) as data:
            arrays = {key: np.asarray(data[key], dtype=np.float64) for key in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise WeightsError(f"{path}: not a readable .npz file ({exc})") from exc
    problems = []
    for key, shape in (("pca_eigen_vectors", (EMBEDDING_SIZE, EMBEDDING_SIZE)), ("pca_means", (EMBEDDING_SIZE, 1))):
        if key not in arrays:
            problems.append(f"{key}: missing")
        elif arrays[key].size != np.prod(shape) or (key == "pca_eigen_vectors" and arrays[key].shape != shape):
            problems.append(f"{key}: shape {arrays[key].shape}, expected {shape}")
        elif not np.all(np.isfinite(arrays[key])):
            problems.append(f"{key}: NaN or infinite values")
    if problems:
        raise WeightsError(f"{path}: not VGGish PCA parameters:\n  " + "\n  ".join(problems))
    return arrays["pca_eigen_vectors"], arrays["pca_means"].reshape(EMBEDDING_SIZE)


def convert_pca(path: str | os.PathLike, *, folder: str | os.PathLike | None = None) -> Path:
    """Check ``vggish_pca_params.npz`` and cache it beside the weights (for ``postprocess=True``)."""
    return save_pca(load_pca_params(path), folder)


def save_pca(arrays: tuple[np.ndarray, np.ndarray], folder: str | os.PathLike | None) -> Path:
    """Write checked ``(eigen_vectors, means)`` atomically to :func:`pca_params_path`."""
    eigen_vectors, means = arrays
    return atomic_save_npz(pca_params_path(folder), pca_eigen_vectors=eigen_vectors,
                           pca_means=means.reshape(EMBEDDING_SIZE, 1))


def postprocess(embedding: np.ndarray, *, pca_params: str | os.PathLike | tuple | None = None) -> np.ndarray:
    """AudioSet's release format: PCA-whiten, clip to [-2, 2], quantise to 8 bits.

    Notebook: 03_vggish_features.

    ``(embedding - means) @ eigen_vectors.T``, clipped, then ``(x + 2) * 255 / 4`` truncated to uint8.
    Optional and off by default: genre classification works on the raw float embeddings.

    Parameters
    ----------
    embedding : np.ndarray [shape=(n_patches, 128)]
    pca_params : path, (eigen_vectors, means) or None
        Default: the cached parameters (:func:`convert_pca`).

    Returns
    -------
    np.ndarray [shape=(n_patches, 128)], uint8
    """
    embedding = np.asarray(embedding, dtype=np.float64)
    if embedding.ndim != 2 or embedding.shape[1] != EMBEDDING_SIZE:
        raise ParameterError(f"embedding must have shape (n_patches, {EMBEDDING_SIZE}), got {embedding.shape}")
    if pca_params is None:
        path = pca_params_path()
        if not path.is_file():
            raise WeightsError(f"no PCA parameters at {path}; cache them with "
                               f"`genrelib weights vggish --pca vggish_pca_params.npz` (from {PCA_URL}, "
                               f"or fetched and checked by genrelib.vggish.download_pca())")
        pca_params = path
    eigen_vectors, means = pca_params if isinstance(pca_params, tuple) else load_pca_params(pca_params)
    whitened = (embedding - np.reshape(means, (1, EMBEDDING_SIZE))) @ np.asarray(eigen_vectors).T
    clipped = np.clip(whitened, _QUANTIZE_MIN, _QUANTIZE_MAX)
    return ((clipped - _QUANTIZE_MIN) * (255.0 / (_QUANTIZE_MAX - _QUANTIZE_MIN))).astype(np.uint8)
