"""VGGish as a ``genrelib.embed`` backend: 16 kHz audio -> one 128-d vector per 0.96 s.

Notebook: 03_vggish_features.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..checks import positive_int
from ..errors import ParameterError, WeightsError
from ..storage import file_digest
from .frontend import FRONT_END_TF_VERSION, HOP_SAMPLES, N_MELS, PATCH_FRAMES, SAMPLE_RATE, log_mel_patches_tf
from .network import EMBEDDING_SIZE, VGGish
from .pca import load_pca_params, postprocess
from .weights import converted_weights_path, missing_weights_message, pca_params_path
from .weights import weights_checksum as checksum_of_weights_file

__all__ = ["VGGishBackend"]


class VGGishBackend:
    """VGGish as a ``genrelib.embed`` backend: 16 kHz audio -> one 128-d vector per 0.96 s.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    weights : "cached", "random" or path
        ``"cached"`` (default): the converted official weights; without them a :class:`WeightsError`
        says how to get them - nothing falls back to random weights silently. ``"random"``: seeded random
        weights, only for tests and benchmarks (same FLOPs, meaningless vectors). A path: a
        ``.weights.h5`` file.
    postprocess : bool
        Apply the PCA post-processing (:func:`postprocess`; needs cached PCA parameters). Off by default.
    batch_size : int > 0
        Patches per forward pass (64: as fast as larger batches on 2 CPU cores, see
        ``benchmarks/bench_embed.py``).
    jit_compile : bool or None
        Compile the forward pass with XLA (``True``) or run it as a plain ``tf.function`` graph
        (``False``). ``None`` (default): XLA when a GPU is visible, else the plain graph - on the 2-core
        AMD EPYC development machine (TF 2.21, oneDNN on) its fused oneDNN convolutions did 1.08 x the
        matmul FLOP rate per CPU-second against 0.90 x for XLA's.
    seed : int
        Seed of ``weights="random"``.
    folder : path, optional
        Weight cache folder; default ``cache_dir("weights")``.

    Notes
    -----
    Besides the backend protocol's ``embed(y)``, this backend offers ``features(y)`` (the tf.signal front
    end) and ``embed_patches(patches)`` so that ``embed_dataset`` can compute features in a background
    thread and fill every forward pass with patches of several clips. With XLA, partial batches are
    zero-padded to a multiple of 16 so that it compiles at most ``batch_size / 16`` shapes.
    """

    name = "vggish"
    sample_rate = SAMPLE_RATE
    embedding_dim = EMBEDDING_SIZE
    patch_seconds = PATCH_FRAMES * HOP_SAMPLES / SAMPLE_RATE
    patch_hop_seconds = patch_seconds
    front_end_version = FRONT_END_TF_VERSION

    def __init__(self, *, weights: str | os.PathLike = "cached", postprocess: bool = False, batch_size: int = 64,
                 jit_compile: bool | None = None, seed: int = 0, folder: str | os.PathLike | None = None):
        self.batch_size = positive_int(batch_size, "batch_size")
        self.postprocess = bool(postprocess)
        self.jit_compile = _gpu_visible() if jit_compile is None else bool(jit_compile)
        self._folder = folder
        self._pca = None
        if self.postprocess:
            self._pca = load_pca_params(_existing(pca_params_path(folder), _NO_PCA_MESSAGE))
        if weights == "random":
            self.model = VGGish(seed=seed, trainable=False)
        else:
            self.model = VGGish(weights=_backend_weights_path(weights, folder), trainable=False)
        self._weights_checksum = _backend_weights_checksum(weights, postprocess=self.postprocess, seed=seed,
                                                           folder=folder)
        self._forward = None

    @classmethod
    def describe(cls, *, weights: str | os.PathLike = "cached", postprocess: bool = False, batch_size: int = 64,
                 jit_compile: bool | None = None, seed: int = 0, folder: str | os.PathLike | None = None):
        """The :class:`genrelib.embed.BackendInfo` of the backend these options make, read from the weight
        files without building the network (``batch_size`` and ``jit_compile`` do not enter it)."""
        from ..embed import BackendInfo

        positive_int(batch_size, "batch_size")
        checksum = _backend_weights_checksum(weights, postprocess=bool(postprocess), seed=seed, folder=folder)
        return BackendInfo.of(cls, weights_checksum=checksum)

    def weights_checksum(self) -> str:
        """The converted source's SHA-256 (or ``random-glorot-seed<N>``), plus the PCA file's when used."""
        return self._weights_checksum

    def features(self, y: np.ndarray) -> np.ndarray:
        """Log-mel patches [shape=(n_patches, 96, 64)] of 16 kHz audio (tf.signal front end)."""
        return log_mel_patches_tf(y, sr=self.sample_rate)

    def embed_patches(self, patches: np.ndarray) -> np.ndarray:
        """Embeddings [shape=(n_patches, 128)] of log-mel patches [shape=(n_patches, 96, 64)]."""
        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise ParameterError(f"patches must have shape (n, {PATCH_FRAMES}, {N_MELS}), got {patches.shape}")
        outputs = [self._run(patches[start:start + self.batch_size])
                   for start in range(0, len(patches), self.batch_size)]
        embedding = np.concatenate(outputs) if outputs else np.zeros((0, EMBEDDING_SIZE), np.float32)
        if self._pca is not None:
            embedding = postprocess(embedding, pca_params=self._pca).astype(np.float32)
        return embedding

    def embed(self, y: np.ndarray) -> np.ndarray:
        """Embeddings [shape=(n_patches, 128)] of mono 16 kHz audio [shape=(n,)]."""
        return self.embed_patches(self.features(y))

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        if self._forward is None:
            model = self.model
            # XLA compiles one program per input shape; a plain graph takes any batch size.
            shape = None if self.jit_compile else [None, PATCH_FRAMES, N_MELS, 1]
            self._forward = tf.function(lambda x: model(x, training=False), jit_compile=self.jit_compile,
                                        input_signature=None if shape is None else [tf.TensorSpec(shape)],
                                        autograph=False)  # straight-line code: nothing to convert
        # XLA: every chunk padded to one full batch, so one program is compiled and traced once (a remainder of
        # another size would compile again and make TensorFlow warn about retracing).
        size = self.batch_size if self.jit_compile else len(chunk)
        padded = np.zeros((size, PATCH_FRAMES, N_MELS, 1), np.float32)
        padded[: len(chunk), :, :, 0] = chunk
        return self._forward(tf.constant(padded)).numpy()[: len(chunk)]


_NO_PCA_MESSAGE = "no cached PCA parameters; run `genrelib weights vggish --pca vggish_pca_params.npz`"


def _backend_weights_path(weights: str | os.PathLike, folder: str | os.PathLike | None) -> Path:
    return converted_weights_path(folder) if weights == "cached" else Path(weights)


def _backend_weights_checksum(weights: str | os.PathLike, *, postprocess: bool, seed: int,
                              folder: str | os.PathLike | None) -> str:
    """:meth:`VGGishBackend.weights_checksum` for these options, from the files alone."""
    if weights == "random":
        checksum = f"random-glorot-seed{seed}"
    else:
        path = _backend_weights_path(weights, folder)
        if not path.is_file():
            raise WeightsError(missing_weights_message(path))
        checksum = checksum_of_weights_file(path)
    if postprocess:
        checksum += "+pca:" + file_digest(_existing(pca_params_path(folder), _NO_PCA_MESSAGE))
    return checksum


def _gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _existing(path: Path, message: str) -> Path:
    if not path.is_file():
        raise WeightsError(f"{path}: {message}")
    return path
