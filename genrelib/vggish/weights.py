"""Where VGGish's weight files come from and where their converted copies live; which weights they are.

Notebook: 03_vggish_features.

The converted cache is ``<cache_dir("weights")>/vggish.weights.h5`` (written by
:mod:`genrelib.vggish.convert`) with ``vggish_pca_params.npz`` beside it (:mod:`genrelib.vggish.pca`).
Nothing here imports TensorFlow or Keras, so ``genrelib.embed`` can ask
:func:`converted_weights_available` cheaply.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ChecksumError, WeightsError
from ..storage import cache_dir, file_digest

__all__ = [
    "CHECKPOINT_URL",
    "CHECKPOINT_SHA256",
    "CHECKPOINT_BYTES",
    "HUB_HANDLE",
    "converted_weights_path",
    "pca_params_path",
    "converted_weights_available",
    "converted_weights_info",
    "weights_checksum",
    "weights_status",
    "download_checkpoint",
]

CHECKPOINT_URL = "https://storage.googleapis.com/audioset/vggish_model.ckpt"
# Google publishes no checksum for vggish_model.ckpt. This SHA-256 is a third-party pin of the file served
# at CHECKPOINT_URL (the same value appears, for instance, in uncharted-distil/distil-primitives' install
# metadata); it identifies one file, it is not Google's word that the file is right.
CHECKPOINT_SHA256 = "0962b1914e3e053922d957c45bc84a78c985765641dc6bceeeb3a7d8dfecfdf6"
#: Size of the file that CHECKPOINT_SHA256 pins (a third-party figure too): checked before hashing, so a
#: truncated download is reported at once instead of after reading 291 MB.
CHECKPOINT_BYTES = 291_108_469
HUB_HANDLE = "https://tfhub.dev/google/vggish/1"

CONVERTED_NAME = "vggish.weights.h5"
PCA_NAME = "vggish_pca_params.npz"
#: Written into every converted file, so a foreign ``.weights.h5`` can be told apart.
CONVERTED_FORMAT = "genrelib-vggish-1"


def converted_weights_path(folder: str | os.PathLike | None = None) -> Path:
    """Where converted weights live: ``<folder or cache_dir("weights")>/vggish.weights.h5``."""
    return Path(folder or cache_dir("weights", create=False)) / CONVERTED_NAME


def pca_params_path(folder: str | os.PathLike | None = None) -> Path:
    """Where validated PCA parameters live: ``<folder or cache_dir("weights")>/vggish_pca_params.npz``."""
    return Path(folder or cache_dir("weights", create=False)) / PCA_NAME


def converted_weights_available(folder: str | os.PathLike | None = None) -> bool:
    """True when converted official weights are cached (cheap: no TensorFlow import).

    ``genrelib.embed.resolve_backend("auto")`` asks this to choose VGGish over the offline backend.
    """
    return converted_weights_path(folder).is_file()


def _converted_attributes(path: Path) -> dict[str, str]:
    """The ``genrelib_*`` attributes a conversion wrote into ``path`` ("" where absent)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return {key: str(handle.attrs.get(f"genrelib_{key}", "")) for key in ("format", "source", "source_sha256")}
    except OSError as exc:
        raise WeightsError(f"{path}: not a readable weights file ({exc}); convert the weights again") from exc


def converted_weights_info(folder: str | os.PathLike | None = None) -> dict[str, str]:
    """What the cache holds: ``path``, ``source``, ``source_sha256`` and ``pca_sha256`` ("" if none).

    Raises :class:`WeightsError` when no weights are converted.
    """
    path = converted_weights_path(folder)
    if not path.is_file():
        raise WeightsError(missing_weights_message(path))
    attrs = _converted_attributes(path)
    pca = pca_params_path(folder)
    return {"path": str(path), "source": attrs["source"], "source_sha256": attrs["source_sha256"],
            "pca_sha256": file_digest(pca) if pca.is_file() else ""}


def weights_checksum(path: str | os.PathLike) -> str:
    """The identity of a ``.weights.h5`` file, as embedding caches and fine-tuning runs record it.

    The SHA-256 of the source it was converted from, recorded at conversion (reading it costs nothing),
    else the file's own SHA-256 (a ``.weights.h5`` saved elsewhere, e.g. after fine-tuning).

    Raises :class:`WeightsError` when the file cannot be read.
    """
    path = Path(path)
    return _converted_attributes(path)["source_sha256"] or file_digest(path)


def weights_status(folder: str | os.PathLike | None = None) -> str:
    """One sentence on the converted weights: where they came from, or how to get them.

    Notebook: 03_vggish_features.
    """
    if not converted_weights_available(folder):
        return (f"No converted VGGish weights at {converted_weights_path(folder)}: the network below has "
                f"random weights and the embeddings come from an offline backend. Get the real weights with "
                f"`genrelib weights vggish --download` (or --from-checkpoint / --from-hub).")
    info = converted_weights_info(folder)
    pca = "with" if info["pca_sha256"] else "without"
    return (f"Converted VGGish weights at {info['path']} (from {info['source']}, sha256 "
            f"{info['source_sha256'][:12]}...), {pca} PCA parameters.")


def missing_weights_message(path: Path) -> str:
    """How to get converted weights, for the error raised where ``path`` holds none."""
    return (f"no converted VGGish weights at {path}. Get them once (needs internet) with\n"
            f"  genrelib weights vggish --download\n"
            f"or from a file you have:\n"
            f"  genrelib weights vggish --from-checkpoint vggish_model.ckpt   ({CHECKPOINT_URL})\n"
            f"  genrelib weights vggish --from-hub {HUB_HANDLE}   (or a local SavedModel folder)\n"
            f"Random weights are used only when asked for explicitly (VGGishBackend(weights='random')).")


def size_mismatch(path: Path, *, sha256: str, n_bytes: int | None) -> str:
    """Why ``path`` cannot be the file of digest ``sha256`` and size ``n_bytes``, or "" when its size fits.

    A stat costs nothing; hashing 291 MB costs seconds, so sizes are compared first.
    """
    if n_bytes is None or (size := path.stat().st_size) == n_bytes:
        return ""
    return (f"{path}: {size:,} bytes, not the {n_bytes:,} of the pinned file, so its sha256 differs from the "
            f"expected {sha256} (a truncated or different file?)")


def download_checked(url: str, dest: Path, *, sha256: str, n_bytes: int | None, force_overwrite: bool,
                     progress: bool, timeout: float) -> Path:
    """Fetch ``url`` onto ``dest`` unless ``dest`` already is the file; size, then SHA-256, checked."""
    from ..data import download_verified

    if dest.is_file() and not force_overwrite:
        if not size_mismatch(dest, sha256=sha256, n_bytes=n_bytes) and file_digest(dest) == sha256:
            return dest
        raise ChecksumError(f"{dest}: exists but its size or sha256 differs from the expected ({sha256}); pass "
                            f"force_overwrite=True (CLI: --overwrite) to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return download_verified([url], dest, digest=sha256, progress=progress, timeout=timeout)


def download_checkpoint(
    dest: str | os.PathLike | None = None,
    *,
    url: str = CHECKPOINT_URL,
    sha256: str = CHECKPOINT_SHA256,
    force_overwrite: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download the official slim checkpoint, verified by its size and SHA-256.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    dest : path, optional
        Target file; default ``cache_dir("downloads")/vggish_model.ckpt`` (291 108 469 bytes).
    url, sha256 : str
        Source and expected digest (tests point them at a local server). The size is checked only
        against the pinned official file (``sha256=CHECKPOINT_SHA256``).
    force_overwrite : bool
        Download again even if ``dest`` already holds the verified file.
    progress : bool
        Show a progress bar.
    timeout : float > 0 [s]
        Per-request network timeout.

    Returns
    -------
    Path
        ``dest``, verified.

    Notes
    -----
    Bytes go to ``<dest>.part`` first (an interrupted download resumes from it); only a file whose
    SHA-256 matches is renamed onto ``dest``. A mismatch deletes the part file and raises
    :class:`ChecksumError`; a network failure raises :class:`DownloadError`.
    """
    dest = Path(dest) if dest else cache_dir("downloads") / "vggish_model.ckpt"
    return download_checked(url, dest, sha256=sha256, n_bytes=CHECKPOINT_BYTES if sha256 == CHECKPOINT_SHA256 else None,
                            force_overwrite=force_overwrite, progress=progress, timeout=timeout)
