"""VGGish in native Keras 3: the exact published front end, the network, three official weight sources
converted into one cache, PCA post-processing, the official smoke test and the embedding backend.

Notebook: 03_vggish_features.

VGGish (Hershey et al., 2017) turns 0.96 s of 16 kHz audio into a 128-d vector. Google publishes it as a
TF-Slim checkpoint and as a TF Hub SavedModel saved non-trainable; neither can live inside a Keras 3 model,
so the network is rebuilt here in Keras 3 (layer names map one-to-one to the official variable names) and
the official weights are copied into it once and cached as ``.weights.h5`` under
``cache_dir("weights")``::

    genrelib weights vggish --download                        # official checkpoint, sha256-checked
    genrelib weights vggish --from-checkpoint vggish_model.ckpt
    genrelib weights vggish --from-hub https://tfhub.dev/google/vggish/1   # or a local SavedModel folder
    genrelib weights vggish --pca vggish_pca_params.npz       # optional post-processing (off by default)
    genrelib weights check                                    # the official smoke test

TensorFlow and Keras are imported inside the functions that need them, so ``genrelib.embed`` can ask
:func:`converted_weights_available` without loading TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .audio import resample
from .checks import positive_int, valid_audio
from .errors import AudioError, ChecksumError, ParameterError, WeightsError
from .storage import atomic_path, atomic_save_npz, cache_dir, file_digest

__all__ = [
    "SAMPLE_RATE",
    "EMBEDDING_SIZE",
    "PATCH_FRAMES",
    "N_MELS",
    "MIN_SAMPLES",
    "FRONT_END_VERSION",
    "CHECKPOINT_URL",
    "CHECKPOINT_SHA256",
    "CHECKPOINT_BYTES",
    "PCA_URL",
    "HUB_HANDLE",
    "SMOKE_TEST",
    "mel_filterbank",
    "stft_magnitude",
    "log_mel_spectrogram",
    "log_mel_patches",
    "log_mel_patches_tf",
    "VGGish",
    "official_variables",
    "official_variable_name",
    "converted_weights_path",
    "pca_params_path",
    "converted_weights_available",
    "converted_weights_info",
    "weights_status",
    "download_checkpoint",
    "convert_checkpoint",
    "convert_saved_model",
    "convert_pca",
    "load_pca_params",
    "postprocess",
    "smoke_test",
    "VGGishBackend",
]

# ------------------------------------------------------------------------------------------ constants

#: Hz: the only rate the network was trained on.
SAMPLE_RATE = 16000
#: STFT window: 400 samples = 25 ms at 16 kHz.
WINDOW_SAMPLES = 400
#: STFT hop: 160 samples = 10 ms at 16 kHz.
HOP_SAMPLES = 160
#: FFT length: the next power of two above the window (257 frequency bins).
FFT_LENGTH = 512
N_MELS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
#: Added before the logarithm so silence maps to log(0.01), not -inf.
LOG_OFFSET = 0.01
#: Frames per patch: 96 hops of 10 ms = 0.96 s, patches do not overlap.
PATCH_FRAMES = 96
EMBEDDING_SIZE = 128
#: Samples at 16 kHz that yield one patch: 400 + 95 * 160 = 15 600 (0.975 s).
MIN_SAMPLES = WINDOW_SAMPLES + (PATCH_FRAMES - 1) * HOP_SAMPLES
#: Changes whenever the front end's numbers would change (part of every embedding cache key).
FRONT_END_VERSION = "vggish-logmel-1"

CHECKPOINT_URL = "https://storage.googleapis.com/audioset/vggish_model.ckpt"
CHECKPOINT_SHA256 = "0962b1914e3e053922d957c45bc84a78c985765641dc6bceeeb3a7d8dfecfdf6"
CHECKPOINT_BYTES = 291_108_469
PCA_URL = "https://storage.googleapis.com/audioset/vggish_pca_params.npz"
HUB_HANDLE = "https://tfhub.dev/google/vggish/1"

#: The official smoke test (research/audioset/vggish/vggish_smoke_test.py, values of July 2023).
SMOKE_TEST = {
    "seconds": 3.0,
    "frequency": 1000.0,
    "embedding_mean": 0.000657,
    "embedding_std": 0.343,
    "postprocessed_mean": 126.0,
    "postprocessed_std": 89.3,
    "rtol": 0.1,
}

# PCA post-processing quantises each whitened component from [-2, 2] into 0..255.
_QUANTIZE_MIN, _QUANTIZE_MAX = -2.0, 2.0
_CONVERTED_NAME = "vggish.weights.h5"
_PCA_NAME = "vggish_pca_params.npz"
_FORMAT = "genrelib-vggish-1"

# --------------------------------------------------------------------------------------- front end


def _hertz_to_mel(frequency):
    """HTK mel scale: mel = 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(frequency, dtype=np.float64) / 700.0)


def mel_filterbank() -> np.ndarray:
    """VGGish's mel weights: 257 rFFT bins at 16 kHz -> 64 bands from 125 to 7500 Hz.

    Notebook: 03_vggish_features.

    Triangles are built in mel space over band edges spaced evenly between the two limits, and the DC
    bin's weight is zero. (``librosa.filters.mel`` builds its triangles in Hz and normalises their
    area, so its weights differ; that is why this is written out.)

    Returns
    -------
    weights : np.ndarray [shape=(257, 64)], float64
    """
    bins_mel = _hertz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, FFT_LENGTH // 2 + 1))
    edges = np.linspace(_hertz_to_mel(MEL_MIN_HZ), _hertz_to_mel(MEL_MAX_HZ), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def _to_16k(y: np.ndarray, sr: int, *, dtype=np.float64) -> np.ndarray:
    """Check, then resample a mono waveform to 16 kHz with soxr (float64 as the official code, or float32
    for the fast path)."""
    sr = positive_int(sr, "sr")
    valid_audio(y, allow_silence=True)  # checks only: it returns float32, and float64 input stays float64
    y = np.ascontiguousarray(y, dtype=dtype)
    y = resample(y, orig_sr=sr, target_sr=SAMPLE_RATE)
    if y.size < MIN_SAMPLES:
        raise AudioError(f"audio lasts {y.size / SAMPLE_RATE:.3f} s at 16 kHz ({y.size} samples); VGGish needs "
                         f"at least one 0.96 s patch ({MIN_SAMPLES} samples = 0.975 s including the STFT window)")
    return y


def stft_magnitude(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Magnitude spectrum of 25 ms frames every 10 ms: VGGish's first step.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio (resampled to 16 kHz first when ``sr`` differs).
    sr : int > 0 [Hz]

    Returns
    -------
    magnitude : np.ndarray [shape=(n_frames, 257)], float64
        ``|rfft(frame * periodic_hann, 512)|``; frames of 400 samples every 160, no padding, so
        ``n_frames = 1 + (n - 400) // 160`` at 16 kHz.
    """
    import scipy.signal

    y = _to_16k(y, sr)
    frames = np.lib.stride_tricks.sliding_window_view(y, WINDOW_SAMPLES)[::HOP_SAMPLES]
    window = scipy.signal.get_window("hann", WINDOW_SAMPLES, fftbins=True)  # periodic: 0.5 - 0.5 cos(2 pi n / 400)
    return np.abs(np.fft.rfft(frames * window, FFT_LENGTH, axis=-1))


def log_mel_spectrogram(y: np.ndarray, *, sr: int) -> np.ndarray:
    """``log(mel + 0.01)`` of :func:`stft_magnitude`: one 64-band row every 10 ms.

    Notebook: 03_vggish_features.

    Returns
    -------
    log_mel : np.ndarray [shape=(n_frames, 64)], float64
    """
    return np.log(stft_magnitude(y, sr=sr) @ mel_filterbank() + LOG_OFFSET)


def log_mel_patches(y: np.ndarray, *, sr: int) -> np.ndarray:
    """VGGish's input: non-overlapping 0.96 s patches of the log-mel spectrogram.

    Notebook: 03_vggish_features.

    Exactly the published pipeline (``vggish_input.waveform_to_examples``), computed in float64 with
    numpy, except that resampling uses soxr instead of resampy.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio.
    sr : int > 0 [Hz]
        Its sample rate; resampled to 16 kHz when different.

    Returns
    -------
    patches : np.ndarray [shape=(n_patches, 96, 64)], float32
        ``n_patches = n_frames // 96``; the trailing remainder (< 0.96 s) is dropped.

    Raises
    ------
    AudioError
        Fewer than 15 600 samples at 16 kHz (0.975 s): not even one patch.
    """
    log_mel = log_mel_spectrogram(y, sr=sr)
    n_patches = log_mel.shape[0] // PATCH_FRAMES
    return log_mel[: n_patches * PATCH_FRAMES].reshape(n_patches, PATCH_FRAMES, N_MELS).astype(np.float32)


_TF_FRONT_END = None


def _tf_front_end():
    """The batched tf.signal front end as one traced graph (any batch size, any length)."""
    global _TF_FRONT_END
    if _TF_FRONT_END is None:
        import tensorflow as tf

        # tf.signal's HTK filterbank is VGGish's (same mel-space triangles, zero DC row); the unit test
        # checks it against the numpy version.
        mel = tf.signal.linear_to_mel_weight_matrix(N_MELS, FFT_LENGTH // 2 + 1, SAMPLE_RATE, MEL_MIN_HZ,
                                                    MEL_MAX_HZ, dtype=tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)], autograph=False)
        def front_end(waveforms):
            frames = tf.signal.frame(waveforms, WINDOW_SAMPLES, HOP_SAMPLES)
            window = tf.signal.hann_window(WINDOW_SAMPLES, periodic=True)
            magnitude = tf.abs(tf.signal.rfft(frames * window, [FFT_LENGTH]))
            log_mel = tf.math.log(tf.tensordot(magnitude, mel, 1) + LOG_OFFSET)
            return tf.signal.frame(log_mel, PATCH_FRAMES, PATCH_FRAMES, axis=-2)

        _TF_FRONT_END = front_end
    return _TF_FRONT_END


def log_mel_patches_tf(waveforms: np.ndarray, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Batched float32 version of :func:`log_mel_patches` with ``tf.signal`` (the fast path).

    Notebook: 03_vggish_features.

    Parameters
    ----------
    waveforms : np.ndarray [shape=(n,) or (batch, n)], float
        One clip or a batch of equally long clips.
    sr : int > 0 [Hz]
        Their sample rate; resampled to 16 kHz with soxr when different (on the host).

    Returns
    -------
    patches : np.ndarray [shape=(n_patches, 96, 64) or (batch, n_patches, 96, 64)], float32
        Agrees with :func:`log_mel_patches` to about 1e-5 (float32 against float64).
    """
    waveforms = np.asarray(waveforms)
    if waveforms.ndim not in (1, 2):
        raise ParameterError(f"waveforms must have shape (n,) or (batch, n), got {waveforms.shape}")
    rows = [_to_16k(row, sr, dtype=np.float32) for row in np.atleast_2d(waveforms)]
    patches = _tf_front_end()(rows[0][None] if len(rows) == 1 else np.stack(rows)).numpy()
    return patches[0] if waveforms.ndim == 1 else patches


# ------------------------------------------------------------------------------------------- model

# Layer name -> filters (None: a 2x2 max-pool). Order as in vggish_slim.define_vggish_slim.
_CONV_STACK = (
    ("conv1", 64), ("pool1", None),
    ("conv2", 128), ("pool2", None),
    ("conv3_1", 256), ("conv3_2", 256), ("pool3", None),
    ("conv4_1", 512), ("conv4_2", 512), ("pool4", None),
)
# The current official fc2 has no activation (older releases had a ReLU there).
_DENSE_STACK = (("fc1_1", 4096, "relu"), ("fc1_2", 4096, "relu"), ("fc2", EMBEDDING_SIZE, None))


def official_variable_name(layer: str, kind: str) -> str:
    """Official slim variable of a Keras layer's ``kind`` (``"kernel"`` or ``"bias"``).

    ``("conv3_1", "kernel")`` -> ``"vggish/conv3/conv3_1/weights"``, ``("fc2", "bias")`` ->
    ``"vggish/fc2/biases"`` (slim.repeat nests ``conv3_1`` inside a ``conv3`` scope).
    """
    scope = f"vggish/{layer.split('_')[0]}/{layer}" if "_" in layer else f"vggish/{layer}"
    suffix = {"kernel": "weights", "bias": "biases"}[kind]
    return f"{scope}/{suffix}"


def official_variables() -> dict[str, tuple[int, ...]]:
    """Every official variable name with its shape (18 variables, 72 141 184 numbers)."""
    shapes, channels = {}, 1
    for layer, filters in _CONV_STACK:
        if filters is not None:
            shapes[official_variable_name(layer, "kernel")] = (3, 3, channels, filters)
            shapes[official_variable_name(layer, "bias")] = (filters,)
            channels = filters
    width = 6 * 4 * channels  # 96x64 halved four times
    for layer, units, _ in _DENSE_STACK:
        shapes[official_variable_name(layer, "kernel")] = (width, units)
        shapes[official_variable_name(layer, "bias")] = (units,)
        width = units
    return shapes


def VGGish(*, weights: str | os.PathLike | None = None, trainable: bool = True, seed: int | None = None):
    """The VGGish network as a native Keras 3 model (72 141 184 parameters).

    Notebook: 03_vggish_features.

    Input (96, 64, 1) log-mel patch -> conv1 64 -> pool -> conv2 128 -> pool -> conv3_1/conv3_2 256 ->
    pool -> conv4_1/conv4_2 512 -> pool -> flatten (6 * 4 * 512) -> fc1_1 4096 -> fc1_2 4096 -> fc2 128.
    Convolutions are 3x3, stride 1, SAME, ReLU; pools 2x2 stride 2; fc2 is linear.

    Parameters
    ----------
    weights : None, "cached" or path
        ``None``: freshly initialised (random; for fine-tuning from scratch or tests). ``"cached"``: the
        converted official weights (:func:`converted_weights_path`). A path: a ``.weights.h5`` file.
    trainable : bool
        Leave the layers trainable (fine-tuning) or freeze them.
    seed : int, optional
        Seed of the random initialisation (reproducible random weights).

    Returns
    -------
    model : keras.Model
        Layer names ``conv1`` ... ``fc2`` map to the official variables via :func:`official_variable_name`.
    """
    import keras

    path = None
    if weights is not None:  # check before spending a second on building 72 M parameters
        path = converted_weights_path() if weights == "cached" else Path(weights)
        if not path.is_file():
            raise WeightsError(_missing_weights_message(path))

    def init(offset: int):
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)

    inputs = keras.Input((PATCH_FRAMES, N_MELS, 1), name="log_mel_patch")
    x = inputs
    for offset, (layer, filters) in enumerate(_CONV_STACK):
        if filters is None:
            x = keras.layers.MaxPooling2D(2, strides=2, padding="same", data_format="channels_last", name=layer)(x)
        else:
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", data_format="channels_last",
                                    kernel_initializer=init(offset), name=layer)(x)
    x = keras.layers.Flatten(data_format="channels_last", name="flatten")(x)
    for offset, (layer, units, activation) in enumerate(_DENSE_STACK, start=len(_CONV_STACK)):
        x = keras.layers.Dense(units, activation=activation, kernel_initializer=init(offset), name=layer)(x)
    model = keras.Model(inputs, x, name="vggish")
    if path is not None:
        _load_weights_file(model, path)
    model.trainable = trainable
    return model


def _load_weights_file(model, path: Path) -> None:
    try:
        model.load_weights(path)
    except Exception as exc:  # Keras/h5py raise many types for a damaged or foreign file
        raise WeightsError(f"{path}: cannot load VGGish weights ({type(exc).__name__}: {exc}); convert them "
                           f"again with `genrelib weights vggish ... --overwrite`") from exc


def _assign(model, values: dict[str, np.ndarray]) -> None:
    """Copy official variables into the Keras layers (shapes were checked by :func:`_check_variables`)."""
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([values[official_variable_name(layer.name, "kernel")],
                               values[official_variable_name(layer.name, "bias")]])


# ------------------------------------------------------------------------------------ weight cache


def converted_weights_path(folder: str | os.PathLike | None = None) -> Path:
    """Where converted weights live: ``<folder or cache_dir("weights")>/vggish.weights.h5``."""
    return Path(folder or cache_dir("weights", create=False)) / _CONVERTED_NAME


def pca_params_path(folder: str | os.PathLike | None = None) -> Path:
    """Where validated PCA parameters live: ``<folder or cache_dir("weights")>/vggish_pca_params.npz``."""
    return Path(folder or cache_dir("weights", create=False)) / _PCA_NAME


def converted_weights_available(folder: str | os.PathLike | None = None) -> bool:
    """True when converted official weights are cached (cheap: no TensorFlow import).

    ``genrelib.embed.resolve_backend("auto")`` asks this to choose VGGish over the offline backend.
    """
    return converted_weights_path(folder).is_file()


def converted_weights_info(folder: str | os.PathLike | None = None) -> dict[str, str]:
    """What the cache holds: ``path``, ``source``, ``source_sha256`` and ``pca_sha256`` ("" if none).

    Raises :class:`WeightsError` when no weights are converted.
    """
    import h5py

    path = converted_weights_path(folder)
    if not path.is_file():
        raise WeightsError(_missing_weights_message(path))
    try:
        with h5py.File(path, "r") as handle:
            attrs = {key: str(handle.attrs.get(f"genrelib_{key}", "")) for key in ("format", "source", "source_sha256")}
    except OSError as exc:
        raise WeightsError(f"{path}: not a readable weights file ({exc}); convert the weights again") from exc
    pca = pca_params_path(folder)
    return {"path": str(path), "source": attrs["source"], "source_sha256": attrs["source_sha256"],
            "pca_sha256": file_digest(pca) if pca.is_file() else ""}


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


def _missing_weights_message(path: Path) -> str:
    return (f"no converted VGGish weights at {path}. Get them once (needs internet) with\n"
            f"  genrelib weights vggish --download\n"
            f"or from a file you have:\n"
            f"  genrelib weights vggish --from-checkpoint vggish_model.ckpt   ({CHECKPOINT_URL})\n"
            f"  genrelib weights vggish --from-hub {HUB_HANDLE}   (or a local SavedModel folder)\n"
            f"Random weights are used only when asked for explicitly (VGGishBackend(weights='random')).")


def download_checkpoint(
    dest: str | os.PathLike | None = None,
    *,
    url: str = CHECKPOINT_URL,
    sha256: str = CHECKPOINT_SHA256,
    force_overwrite: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download the official slim checkpoint, verified by its SHA-256.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    dest : path, optional
        Target file; default ``cache_dir("downloads")/vggish_model.ckpt`` (291 108 469 bytes).
    url, sha256 : str
        Source and expected digest (tests point them at a local server).
    force_overwrite : bool
        Download again even if ``dest`` already holds the verified file.

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
    from .data import download_verified

    dest = Path(dest) if dest else cache_dir("downloads") / "vggish_model.ckpt"
    if dest.is_file() and not force_overwrite:
        if file_digest(dest) == sha256:
            return dest
        raise ChecksumError(f"{dest}: exists but its sha256 differs from {sha256}; pass force_overwrite=True "
                            f"(CLI: --overwrite) to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return download_verified([url], dest, digest=sha256, progress=progress, timeout=timeout)


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
        Expected SHA-256 of the file (default: the official one); ``None`` accepts any checkpoint with
        the right variables (e.g. one you fine-tuned).
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
    _assign(model, values)
    target = converted_weights_path(folder)
    with atomic_path(target) as tmp:
        model.save_weights(tmp)
        with h5py.File(tmp, "a") as handle:
            handle.attrs["genrelib_format"] = _FORMAT
            handle.attrs["genrelib_source"] = source
            handle.attrs["genrelib_source_sha256"] = source_sha256
    if pca_arrays is not None:
        _save_pca(pca_arrays, folder)
    return target


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


# --------------------------------------------------------------------------------- post-processing


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
    return _save_pca(load_pca_params(path), folder)


def _save_pca(arrays: tuple[np.ndarray, np.ndarray], folder) -> Path:
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
                               f"`genrelib weights vggish --pca vggish_pca_params.npz` ({PCA_URL})")
        pca_params = path
    eigen_vectors, means = pca_params if isinstance(pca_params, tuple) else load_pca_params(pca_params)
    whitened = (embedding - np.reshape(means, (1, EMBEDDING_SIZE))) @ np.asarray(eigen_vectors).T
    clipped = np.clip(whitened, _QUANTIZE_MIN, _QUANTIZE_MAX)
    return ((clipped - _QUANTIZE_MIN) * (255.0 / (_QUANTIZE_MAX - _QUANTIZE_MIN))).astype(np.uint8)


# ------------------------------------------------------------------------------------- smoke test


def smoke_test(*, folder: str | os.PathLike | None = None):
    """The official VGGish smoke test on the converted weights: 3 s of a 1 kHz sine.

    Notebook: 03_vggish_features.

    The required rows repeat ``vggish_smoke_test.py`` (July 2023): the sine is generated at 16 kHz
    (``np.arange(0, 3, 1/16000)``), embedded, and the mean and standard deviation of the 3 x 128 values
    must be within 10 % of 0.000657 and 0.343 (126.0 and 89.3 after PCA post-processing, when PCA
    parameters are cached). An informational row also resamples the same sine generated at 44.1 kHz
    (soxr), as the older test and ``vggish_export_tfhub.py`` did; its published reference
    (mean -0.0333, std 0.380) was measured with resampy, so it is shown, not required.

    Returns
    -------
    pd.DataFrame
        One row per statistic: ``signal``, ``statistic``, ``expected``, ``measured``, ``ok``, ``required``.

    Raises
    ------
    WeightsError
        No converted weights (this test is meaningless on random weights).
    """
    import pandas as pd

    model = VGGishBackend(weights=converted_weights_path(folder), folder=folder, batch_size=8, jit_compile=False)
    seconds, frequency, rtol = SMOKE_TEST["seconds"], SMOKE_TEST["frequency"], SMOKE_TEST["rtol"]
    sine_16k = np.sin(2 * np.pi * frequency * np.arange(0, seconds, 1 / SAMPLE_RATE))
    embedding = model.embed_patches(log_mel_patches(sine_16k, sr=SAMPLE_RATE))
    official = "1 kHz sine at 16 kHz"
    rows = [(official, "embedding mean", SMOKE_TEST["embedding_mean"], embedding.mean(), True),
            (official, "embedding std", SMOKE_TEST["embedding_std"], embedding.std(), True)]
    if pca_params_path(folder).is_file():
        quantized = postprocess(embedding, pca_params=pca_params_path(folder))
        rows += [(official, "post-processed mean", SMOKE_TEST["postprocessed_mean"], quantized.mean(), True),
                 (official, "post-processed std", SMOKE_TEST["postprocessed_std"], quantized.std(), True)]
    sine_44k = np.sin(2 * np.pi * frequency * np.linspace(0, seconds, int(seconds * 44100)))
    resampled = model.embed_patches(log_mel_patches(sine_44k, sr=44100))
    rows += [("1 kHz sine at 44.1 kHz, resampled", "embedding mean", -0.0333, resampled.mean(), False),
             ("1 kHz sine at 44.1 kHz, resampled", "embedding std", 0.380, resampled.std(), False)]
    table = pd.DataFrame(rows, columns=["signal", "statistic", "expected", "measured", "required"])
    table["ok"] = np.isclose(table["measured"], table["expected"], rtol=rtol, atol=0.0)
    return table[["signal", "statistic", "expected", "measured", "ok", "required"]]


# ---------------------------------------------------------------------------------------- backend


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
    front_end_version = FRONT_END_VERSION
    _bucket = 16

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
        from .embed import BackendInfo

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
        size = min(self.batch_size, -(-len(chunk) // self._bucket) * self._bucket) if self.jit_compile else len(chunk)
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
            raise WeightsError(_missing_weights_message(path))
        checksum = _weights_file_checksum(path)
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


def _weights_file_checksum(path: Path) -> str:
    """The source checksum recorded at conversion (cheap), else the file's own SHA-256."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            recorded = str(handle.attrs.get("genrelib_source_sha256", ""))
    except OSError as exc:
        raise WeightsError(f"{path}: not a readable weights file ({exc})") from exc
    return recorded or file_digest(path)
