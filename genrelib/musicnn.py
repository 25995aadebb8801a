"""musicnn (Pons & Serra, 2019): four pretrained music-tagging networks, ported to native Keras 3.

Notebook: 03_vggish_features.

The PyPI package ``musicnn==0.1.0`` (ISC licence) ships TF1 checkpoints of four networks trained to
predict 50 tags: ``MTT_musicnn`` and ``MTT_vgg`` on MagnaTagATune, ``MSD_musicnn`` and ``MSD_vgg`` on the
Million Song Dataset. Its code needs TF1 and NumPy < 1.17, so genrelib only reads its checkpoint files
(``pip install --no-deps musicnn==0.1.0``) and rebuilds the networks here:

- *musicnn*: a musically motivated front end (timbral convolutions 7x38 and 7x67 over frequency,
  temporal convolutions 128x1, 64x1, 32x1, each max-pooled over frequency: 561 channels per frame), a
  dense mid end (three 7-frame 1-D convolutions of 64 channels with residual connections), temporal
  max and mean pooling of the 753 frame features, a 200-unit penultimate layer and 50 sigmoid tags.
- *vgg*: five 3x3 convolution blocks of 128 channels with max pooling; ``pool5`` holds 2 x 1 x 128.

The weights are read with TensorFlow's checkpoint reader (what ``tf.train.load_checkpoint`` returns),
every variable mapped
(batch-norm moving statistics included), and cached as a Keras ``.weights.h5`` file named after the
checkpoint's sha256. Inference here (:func:`predict`, the backends) runs batch normalisation in
inference mode, on its moving statistics.

Input representation (the one the checkpoints were trained on): 16 kHz mono, 512-point STFT with a
256-sample hop (16 ms), 96 mel bands, power, ``log10(10000 x + 1)`` computed in float32 (the upstream
extractor first casts to float16, which overflows under NumPy 2), and non-overlapping patches of 187
frames (2.99 s) from frame 0: a 30 s clip gives 10 patches.

Layers exposed by :func:`load_model` (named after what they are; upstream's ``extract_features=True``
mislabels them, jordipons/musicnn#20, so they are taken here by position from ``define_model``):

========== ============================== ============================================
model      layer                          shape per patch
========== ============================== ============================================
musicnn    ``tags``                       (50,) sigmoid tag probabilities
musicnn    ``penultimate``                (200,) batch-normalised ReLU dense layer
musicnn    ``max_pool``, ``mean_pool``    (753,) temporal max / mean of mid-end features
vgg        ``tags``                       (50,)
vgg        ``pool4``                      (11, 6, 128) time x frequency x channels
vgg        ``pool5``                      (2, 1, 128)
========== ============================== ============================================

The embedding backends (``musicnn-msd``, ``musicnn-mtt``, ``vgg-msd``, ``vgg-mtt``) return one row per
patch: ``penultimate`` (200-d) for musicnn and flattened ``pool5`` (256-d: the exact input of vgg's tag
layer, both time steps kept) for vgg by default; ``layer=`` picks another (vgg layers are flattened,
``pool4`` to 8448-d).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .audio import resample
from .checks import one_of, positive_int, valid_audio, warn
from .errors import ParameterError, WeightsError
from .storage import atomic_path, cache_dir

__all__ = [
    "MODELS",
    "LAYERS",
    "DEFAULT_LAYER",
    "SAMPLE_RATE",
    "N_FFT",
    "HOP_LENGTH",
    "N_MELS",
    "PATCH_FRAMES",
    "PATCH_SECONDS",
    "INSTALL_HINT",
    "labels",
    "log_mel",
    "to_patches",
    "checkpoint_prefix",
    "checkpoint_checksum",
    "build_model",
    "model_from_checkpoint",
    "load_model",
    "weights_path",
    "KNOWN_CHECKSUMS",
    "BATCH_PATCHES",
    "predict",
    "top_tags",
    "MusicnnBackend",
    "backend_msd_musicnn",
    "backend_mtt_musicnn",
    "backend_msd_vgg",
    "backend_mtt_vgg",
]

#: The four networks whose checkpoints ``musicnn==0.1.0`` ships.
MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")

#: Outputs of :func:`load_model` per architecture.
LAYERS = {
    "musicnn": ("tags", "penultimate", "max_pool", "mean_pool"),
    "vgg": ("tags", "pool4", "pool5"),
}

#: Embedding layer of each architecture's backend when ``layer`` is not given.
DEFAULT_LAYER = {"musicnn": "penultimate", "vgg": "pool5"}

SAMPLE_RATE = 16000
N_FFT = 512  # 32 ms at 16 kHz
HOP_LENGTH = 256  # 16 ms
N_MELS = 96
PATCH_FRAMES = 187  # what the networks were trained on; vgg's dense layer admits no other length
PATCH_SECONDS = PATCH_FRAMES * HOP_LENGTH / SAMPLE_RATE  # 2.992 s

INSTALL_HINT = "pip install --no-deps musicnn==0.1.0"

#: sha256 of each shipped checkpoint (``.data-00000-of-00001`` then ``.index``), to notice other versions.
KNOWN_CHECKSUMS = {
    "MTT_musicnn": "7e2794c9cea7a35c96141f9bfc61b9babe5ef4abbd122793fbc584cebcee8a5c",
    "MSD_musicnn": "041c827105910b6c2c8d68dc6251219078a5c35483c53ed2a873f2d91cc36dff",
    "MTT_vgg": "51d13bd3b048b4717aeb85336f99910ba535d3457e6383333984b4d609d9decc",
    "MSD_vgg": "a2b31ae6e7719a21eae799f3a3c9043109c710af93c6e6f0f913c548b3d7bde6",
}

_BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default, used by every musicnn layer
_N_TAGS = 50
_OPTIMIZER_VARIABLES = ("Adam", "beta1_power", "beta2_power")


def _architecture(name: str) -> str:
    return "vgg" if name.endswith("_vgg") else "musicnn"


def _package_dir() -> Path:
    try:
        spec = importlib.util.find_spec("musicnn")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the musicnn package, whose checkpoint files genrelib reads, is not installed: "
                           f"run `{INSTALL_HINT}` (--no-deps: its declared TF1/NumPy pins are obsolete)")
    return Path(list(spec.submodule_search_locations)[0])


def labels(name: str) -> tuple[str, ...]:
    """The 50 tag names of model ``name``, in output order (MagnaTagATune or Million Song Dataset tags)."""
    one_of(name, MODELS, "model")
    _package_dir()
    configuration = importlib.import_module("musicnn.configuration")  # plain constants, no TensorFlow
    return tuple(configuration.MTT_LABELS if name.startswith("MTT") else configuration.MSD_LABELS)


# ------------------------------------------------------------------------------------------ front end

def log_mel(y: np.ndarray, *, sr: int) -> np.ndarray:
    """musicnn's input representation: a log-compressed mel spectrogram, frames first.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio.
    sr : int > 0 [Hz]
        Its sample rate; resampled to 16 000 Hz (soxr) when different.

    Returns
    -------
    spectrogram : np.ndarray [shape=(n_frames, 96)], float32
        ``log10(10000 * mel_power + 1)`` with ``n_frames = 1 + len(y_16k) // 256`` (centred frames,
        16 ms apart; librosa's default zero padding at the edges).
    """
    import librosa

    sr = positive_int(sr, "sr")
    y = valid_audio(y, allow_silence=True)
    y = resample(y, orig_sr=sr, target_sr=SAMPLE_RATE)
    power = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH,
                                           n_mels=N_MELS)
    # float32 throughout: float16 (upstream) overflows to inf for loud bins (> 65504 after scaling).
    power = np.ascontiguousarray(power.T, dtype=np.float32)
    return np.log10(np.float32(10000) * power + np.float32(1), dtype=np.float32)


def to_patches(spectrogram: np.ndarray) -> np.ndarray:
    """Cut a spectrogram into non-overlapping 187-frame patches from frame 0 (a trailing rest is dropped).

    Notebook: 03_vggish_features.

    A spectrogram shorter than one patch (a clip under 2.98 s) is repeated until it fills one patch, as
    the checkpoints' own training did for short clips (``pad_short: repeat-pad`` in their config), and a
    :class:`GenrelibWarning` says so; this never reaches the network as a shape error.

    Parameters
    ----------
    spectrogram : np.ndarray [shape=(n_frames, 96)]

    Returns
    -------
    patches : np.ndarray [shape=(max(1, n_frames // 187), 187, 96)], float32
    """
    spectrogram = np.asarray(spectrogram, dtype=np.float32)
    if spectrogram.ndim != 2 or spectrogram.shape[1] != N_MELS or spectrogram.shape[0] == 0:
        raise ParameterError(f"spectrogram must have shape (n_frames > 0, {N_MELS}), got {spectrogram.shape}")
    n_frames = spectrogram.shape[0]
    if n_frames < PATCH_FRAMES:
        warn(f"audio of {n_frames} frames ({n_frames * HOP_LENGTH / SAMPLE_RATE:.2f} s) is shorter than one "
             f"{PATCH_SECONDS:.2f} s musicnn patch; it is repeated to fill one patch")
        spectrogram = spectrogram[np.arange(PATCH_FRAMES) % n_frames]
        n_frames = PATCH_FRAMES
    n_patches = n_frames // PATCH_FRAMES
    return spectrogram[: n_patches * PATCH_FRAMES].reshape(n_patches, PATCH_FRAMES, N_MELS)


# ------------------------------------------------------------------------------------------ checkpoints

def checkpoint_prefix(name: str, *, checkpoint_dir: str | os.PathLike | None = None) -> Path:
    """Where model ``name``'s TF1 checkpoint lives: ``<musicnn package>/<name>/`` (files ``.index``,
    ``.data-00000-of-00001``), or ``checkpoint_dir`` when given; raises :class:`WeightsError` if absent."""
    one_of(name, MODELS, "model")
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else _package_dir() / name
    missing = [part for part in (".index", ".data-00000-of-00001") if not (folder / part).is_file()]
    if missing:
        raise WeightsError(f"{folder}: checkpoint of {name} incomplete (missing {', '.join(missing)}); "
                           f"reinstall the checkpoints with `{INSTALL_HINT}`")
    return folder


_CHECKSUMS: dict[tuple, str] = {}


def checkpoint_checksum(prefix: str | os.PathLike) -> str:
    """sha256 over a checkpoint's ``.data-00000-of-00001`` and ``.index`` files (identifies its weights)."""
    prefix = Path(prefix)
    stats = tuple((prefix / part).stat() for part in (".data-00000-of-00001", ".index"))
    key = (str(prefix.resolve()), tuple((s.st_size, s.st_mtime_ns) for s in stats))
    if key not in _CHECKSUMS:
        digest = hashlib.sha256()
        for part in (".data-00000-of-00001", ".index"):
            with open(prefix / part, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        _CHECKSUMS[key] = digest.hexdigest()
    return _CHECKSUMS[key]


# ------------------------------------------------------------------------------------------ networks

def build_model(name: str):
    """The Keras 3 network of ``name`` with untrained weights (use :func:`load_model` for trained ones).

    Input: log-mel patches [shape=(batch, 187, 96)]; output: a dict of the layers in :data:`LAYERS`.
    """
    import keras

    one_of(name, MODELS, "model")
    inputs = keras.Input((PATCH_FRAMES, N_MELS), name="log_mel")
    builder = _build_vgg if _architecture(name) == "vgg" else _build_musicnn
    return keras.Model(inputs, builder(inputs), name=name)


def _conv_norm(x, filters: int, kernel: tuple[int, ...], *, padding: str, name: str):
    """Convolution with ReLU, then batch norm: the order upstream uses in every block."""
    from keras import layers

    conv = layers.Conv1D if len(kernel) == 1 else layers.Conv2D
    x = conv(filters, kernel, padding=padding, activation="relu", name=f"{name}_conv")(x)
    return layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{name}_norm")(x)


def _max_over_frequency(x, name: str):
    """(batch, time, frequency, channels) -> (batch, time, channels), the maximum over frequency."""
    from keras import layers

    _, n_frames, n_bins, n_channels = x.shape
    x = layers.MaxPooling2D((1, n_bins), name=f"{name}_pool")(x)
    return layers.Reshape((n_frames, n_channels), name=f"{name}_squeeze")(x)


def _build_musicnn(inputs) -> dict:
    from keras import layers

    x = layers.Reshape((PATCH_FRAMES, N_MELS, 1), name="add_channel")(inputs)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name="input_norm")(x)
    # Timbral filters span 40 % / 70 % of the mel axis (38, 67 bins) and 7 frames, zero-padded in time
    # only; temporal filters span 128/64/32 frames (2/1/0.5 s) of one bin, 'same' padded.
    time_padded = layers.ZeroPadding2D(((3, 3), (0, 0)), name="timbral_pad")(x)
    front = [_max_over_frequency(_conv_norm(time_padded, 204, (7, width), padding="valid",
                                            name=f"timbral_{width}"), f"timbral_{width}")
             for width in (int(0.4 * N_MELS), int(0.7 * N_MELS))]
    front += [_max_over_frequency(_conv_norm(x, 51, (length, 1), padding="same", name=f"temporal_{length}"),
                                  f"temporal_{length}")
              for length in (128, 64, 32)]
    front_end = layers.Concatenate(name="front_end")(front)  # (187, 561)
    # Upstream convolves a (time, channels, 1) image with a (7, channels) kernel: a 1-D convolution.
    mid = [_conv_norm(layers.ZeroPadding1D(3, name="mid_1_pad")(front_end), 64, (7,), padding="valid",
                      name="mid_1")]
    for block in (2, 3):
        conv = _conv_norm(layers.ZeroPadding1D(3, name=f"mid_{block}_pad")(mid[-1]), 64, (7,), padding="valid",
                          name=f"mid_{block}")
        mid.append(layers.Add(name=f"mid_{block}_residual")([conv, mid[-1]]))
    features = layers.Concatenate(name="mid_end")([front_end, *mid])  # (187, 753)
    max_pool = layers.GlobalMaxPooling1D(name="max_pool")(features)
    mean_pool = layers.GlobalAveragePooling1D(name="mean_pool")(features)
    # Upstream flattens concat([max, mean], axis=-1) of shape (753, 2): features interleave max0, mean0, ...
    pooled = layers.Concatenate(name="pool_pairs")([layers.Reshape((-1, 1), name="max_column")(max_pool),
                                                    layers.Reshape((-1, 1), name="mean_column")(mean_pool)])
    pooled = layers.Flatten(name="pool_flat")(pooled)
    pooled = layers.BatchNormalization(epsilon=_BN_EPSILON, name="pool_norm")(pooled)
    dense = layers.Dense(200, activation="relu", name="penultimate_dense")(pooled)
    penultimate = layers.BatchNormalization(epsilon=_BN_EPSILON, name="penultimate")(dense)
    logits = layers.Dense(_N_TAGS, name="logits")(penultimate)
    tags = layers.Activation("sigmoid", name="tags")(logits)
    return {"tags": tags, "penultimate": penultimate, "max_pool": max_pool, "mean_pool": mean_pool}


#: (pool size, strides) after each vgg convolution block.
_VGG_POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))


def _build_vgg(inputs) -> dict:
    from keras import layers

    x = layers.Reshape((PATCH_FRAMES, N_MELS, 1), name="add_channel")(inputs)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name="input_norm")(x)
    pools = {}
    for block, (pool_size, strides) in enumerate(_VGG_POOLS, start=1):
        x = _conv_norm(x, 128, (3, 3), padding="same", name=f"block{block}")
        x = layers.MaxPooling2D(pool_size, strides=strides, name=f"pool{block}")(x)
        pools[block] = x
    logits = layers.Dense(_N_TAGS, name="logits")(layers.Flatten(name="pool5_flat")(x))
    tags = layers.Activation("sigmoid", name="tags")(logits)
    return {"tags": tags, "pool4": pools[4], "pool5": pools[5]}


def _checkpoint_names(name: str) -> dict[str, str]:
    """Keras layer -> TF1 variable scope. Upstream names layers by creation order (conv2d, conv2d_1, ...)."""
    if _architecture(name) == "vgg":
        mapping = {"input_norm": "batch_normalization", "logits": "dense"}
        for block in range(1, 6):
            mapping[f"block{block}_conv"] = f"{block}CNN"
            mapping[f"block{block}_norm"] = f"batch_normalization_{block}"
        return mapping
    blocks = ["timbral_38", "timbral_67", "temporal_128", "temporal_64", "temporal_32", "mid_1", "mid_2", "mid_3"]
    mapping = {"input_norm": "batch_normalization", "pool_norm": "batch_normalization_9",
               "penultimate_dense": "dense", "penultimate": "batch_normalization_10", "logits": "dense_1"}
    for index, block in enumerate(blocks):
        mapping[f"{block}_conv"] = "conv2d" if index == 0 else f"conv2d_{index}"
        mapping[f"{block}_norm"] = f"batch_normalization_{index + 1}"
    return mapping


_VARIABLES = {
    "Conv1D": ("kernel", "bias"), "Conv2D": ("kernel", "bias"), "Dense": ("kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def model_from_checkpoint(prefix: str | os.PathLike, *, name: str):
    """Build network ``name`` and load the TF1 checkpoint at ``prefix`` (a folder holding ``.index``).

    Every trainable variable and batch-norm statistic of the checkpoint must land in exactly one Keras
    weight of the right shape (optimizer slots aside), else :class:`WeightsError`.
    """
    import tensorflow as tf

    one_of(name, MODELS, "model")
    prefix = Path(prefix)
    try:
        # tf.train.load_checkpoint(folder) would follow the bundled 'checkpoint' file, which names the
        # authors' own disk; the same reader opened on the prefix "<folder>/" finds the shipped files.
        reader = tf.compat.v1.train.NewCheckpointReader(str(prefix) + os.sep)
    except (ValueError, tf.errors.OpError) as exc:
        raise WeightsError(f"{prefix}: not a readable TF checkpoint ({exc}); reinstall: {INSTALL_HINT}") from exc
    stored = {key for key in reader.get_variable_to_shape_map() if not key.startswith(_OPTIMIZER_VARIABLES)
              and "/Adam" not in key}
    model = build_model(name)
    used = set()
    for layer_name, scope in _checkpoint_names(name).items():
        layer = model.get_layer(layer_name)
        values = []
        for variable, target in zip(_VARIABLES[type(layer).__name__], layer.weights):
            key = f"{scope}/{variable}"
            if key not in stored:
                raise WeightsError(f"{prefix}: variable {key} (for layer {layer_name}) missing from the checkpoint")
            value = reader.get_tensor(key)
            if value.ndim == 4 and len(target.shape) == 3:
                value = value[:, :, 0, :]  # (7, channels, 1, filters) image kernel -> 1-D kernel
            if tuple(value.shape) != tuple(target.shape):
                raise WeightsError(f"{prefix}: {key} has shape {value.shape}, layer {layer_name} needs {target.shape}")
            values.append(value)
            used.add(key)
        layer.set_weights(values)
    if unused := sorted(stored - used):
        raise WeightsError(f"{prefix}: checkpoint variables left unmapped for {name}: {', '.join(unused[:5])}")
    return model


def load_model(name: str, *, checkpoint_dir: str | os.PathLike | None = None, cache: bool = True):
    """Trained Keras 3 network ``name`` (one of :data:`MODELS`): a new, independent model on every call.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    name : {"MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"}
    checkpoint_dir : path, optional
        Folder of the TF1 checkpoint; default: the installed musicnn package's ``<name>/`` folder.
    cache : bool
        Read/write converted weights under ``cache_dir("weights")``.

    Returns
    -------
    keras.Model
        Input [shape=(batch, 187, 96)] log-mel patches; output a dict of :data:`LAYERS` ``[architecture]``.
        Call it with ``training=False`` (or ``predict_on_batch``) so batch norm uses its moving statistics.

    Notes
    -----
    Each call builds its own model (0.1-0.2 s from the cache), so a model being fine-tuned never changes
    the one :func:`predict`, :func:`top_tags` and the embedding backends share.
    The converted weights are cached as ``musicnn_<name>_<sha256[:16]>.weights.h5`` (written atomically);
    the sha256 is the checkpoint's, so other weights never reuse them. An unreadable cache file is
    rebuilt from the checkpoint with a warning.
    """
    prefix = checkpoint_prefix(name, checkpoint_dir=checkpoint_dir)
    checksum = checkpoint_checksum(prefix)
    if name in KNOWN_CHECKSUMS and checksum != KNOWN_CHECKSUMS[name]:
        warn(f"{prefix}: checkpoint differs from the one musicnn 0.1.0 ships (sha256 {checksum[:16]}...); "
             f"results may differ from the reference")
    return _load_cached(name, prefix, checksum) if cache else model_from_checkpoint(prefix, name=name)


_SHARED: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def _shared_model(name: str, checkpoint_dir: str | os.PathLike | None = None):
    """One inference copy of each network per process, for :func:`predict` and the backends."""
    key = (name, None if checkpoint_dir is None else str(Path(checkpoint_dir).resolve()))
    with _LOCK:
        if key not in _SHARED:
            _SHARED[key] = load_model(name, checkpoint_dir=checkpoint_dir)
        return _SHARED[key]


def weights_path(name: str, checksum: str) -> Path:
    """Cache file of ``name``'s converted weights for a checkpoint of sha256 ``checksum``."""
    return cache_dir("weights") / f"musicnn_{name}_{checksum[:16]}.weights.h5"


def _load_cached(name: str, prefix: Path, checksum: str):
    path = weights_path(name, checksum)
    if path.exists():
        model = build_model(name)
        try:
            model.load_weights(path)
            return model
        except (OSError, ValueError, KeyError) as exc:  # h5py and Keras raise these for damaged files
            warn(f"{path}: cached weights unreadable ({type(exc).__name__}); converting the checkpoint again")
    model = model_from_checkpoint(prefix, name=name)
    with atomic_path(path) as tmp:
        model.save_weights(tmp)
    return model


# ------------------------------------------------------------------------------------------ inference

def predict(y: np.ndarray, *, sr: int, model: str = "MSD_musicnn", layer: str | None = None) -> np.ndarray:
    """Per-patch output of one layer for a waveform.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio; a clip under 2.98 s is repeat-padded to one patch (with a warning).
    sr : int > 0 [Hz]
    model : str
        One of :data:`MODELS`.
    layer : str, optional
        One of :data:`LAYERS` ``[architecture]``; default :data:`DEFAULT_LAYER`.

    Returns
    -------
    np.ndarray [shape=(n_patches, *layer_shape)], float32
        e.g. ``(10, 200)`` for musicnn's ``penultimate`` on a 30 s clip, ``(10, 2, 1, 128)`` for vgg's
        ``pool5``.
    """
    one_of(model, MODELS, "model")
    architecture = _architecture(model)
    layer = one_of(layer or DEFAULT_LAYER[architecture], LAYERS[architecture], "layer")
    patches = to_patches(log_mel(y, sr=sr))
    return _run(_shared_model(model), patches)[layer]


#: Patches per forward pass. Peak memory grows with it (measured RSS: 0.94 GB at 1, 1.5 GB at 10 for
#: musicnn) while CPU time per patch barely changes, so keep it small.
BATCH_PATCHES = 4


def _run(network, patches: np.ndarray) -> dict[str, np.ndarray]:
    """All outputs for a stack of patches. ``predict_on_batch`` runs Keras' compiled predict function
    (about twice as fast as an eager call) in inference mode: batch norm uses its moving statistics."""
    chunks = [network.predict_on_batch(patches[start:start + BATCH_PATCHES])
              for start in range(0, len(patches), BATCH_PATCHES)]
    return {key: np.concatenate([np.asarray(chunk[key], dtype=np.float32) for chunk in chunks])
            for key in chunks[0]}


def top_tags(y: np.ndarray, *, sr: int, model: str = "MTT_musicnn", top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` tags of a clip: tag probabilities averaged over its patches, highest first.

    Notebook: 03_vggish_features.

    Returns
    -------
    list of (tag, probability in [0, 1])
    """
    top = positive_int(top, "top")
    mean = predict(y, sr=sr, model=model, layer="tags").mean(axis=0)
    order = np.argsort(-mean, kind="stable")[:top]
    names = labels(model)
    return [(names[i], float(mean[i])) for i in order]


# ------------------------------------------------------------------------------------------ backends

class MusicnnBackend:
    """An embedding backend (see :mod:`genrelib.embed`) on one musicnn network and layer.

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    layer : str, optional
        Default ``"penultimate"`` (200-d) for musicnn, ``"pool5"`` (256-d flattened) for vgg. Other choices:
        ``"max_pool"``/``"mean_pool"`` (753-d), ``"tags"`` (50-d), ``"pool4"`` (8448-d).
    checkpoint_dir : path, optional
        As for :func:`load_model`.

    Notes
    -----
    :meth:`embed` repeat-pads a waveform shorter than one patch (with a warning); ``embed_file`` and
    ``embed_dataset`` instead refuse files shorter than :attr:`patch_seconds` (2.992 s) with an
    :class:`AudioError` naming the file, as for every backend.

    Attributes
    ----------
    name : str
        The registry name (``"musicnn-msd"``...), followed by ``".<layer>"`` for a non-default layer so that
        embedding caches of different layers never mix.
    """

    sample_rate = SAMPLE_RATE
    patch_seconds = PATCH_SECONDS
    patch_hop_seconds = PATCH_SECONDS
    front_end_version = "musicnn-logmel96-float32-187"

    _REGISTRY = {"MSD_musicnn": "musicnn-msd", "MTT_musicnn": "musicnn-mtt", "MSD_vgg": "vgg-msd",
                 "MTT_vgg": "vgg-mtt"}
    _DIMS = {"tags": 50, "penultimate": 200, "max_pool": 753, "mean_pool": 753, "pool4": 11 * 6 * 128,
             "pool5": 2 * 1 * 128}

    def __init__(self, model: str, *, layer: str | None = None, checkpoint_dir: str | os.PathLike | None = None):
        self.model_name = one_of(model, MODELS, "model")
        architecture = _architecture(model)
        self.layer = one_of(layer or DEFAULT_LAYER[architecture], LAYERS[architecture], "layer")
        self.name = self._REGISTRY[model] + ("" if self.layer == DEFAULT_LAYER[architecture] else f".{self.layer}")
        self.embedding_dim = self._DIMS[self.layer]
        self._prefix = checkpoint_prefix(model, checkpoint_dir=checkpoint_dir)  # fail now, not mid-dataset
        self._checkpoint_dir = checkpoint_dir
        self._network = None

    def weights_checksum(self) -> str:
        return checkpoint_checksum(self._prefix)

    def embed(self, y: np.ndarray) -> np.ndarray:
        """``y`` [shape=(n,)] at 16 kHz -> [shape=(n_patches, embedding_dim)] float32."""
        if self._network is None:
            self._network = _shared_model(self.model_name, self._checkpoint_dir)
        patches = to_patches(log_mel(y, sr=self.sample_rate))
        output = _run(self._network, patches)[self.layer]
        return output.reshape(len(output), -1)

    def __repr__(self) -> str:
        return f"MusicnnBackend({self.model_name!r}, layer={self.layer!r})"


def backend_msd_musicnn(**options) -> MusicnnBackend:
    """Registry ``musicnn-msd``: MSD_musicnn, penultimate layer (200-d) by default."""
    return MusicnnBackend("MSD_musicnn", **options)


def backend_mtt_musicnn(**options) -> MusicnnBackend:
    """Registry ``musicnn-mtt``: MTT_musicnn, penultimate layer (200-d) by default."""
    return MusicnnBackend("MTT_musicnn", **options)


def backend_msd_vgg(**options) -> MusicnnBackend:
    """Registry ``vgg-msd``: MSD_vgg, flattened pool5 (256-d) by default."""
    return MusicnnBackend("MSD_vgg", **options)


def backend_mtt_vgg(**options) -> MusicnnBackend:
    """Registry ``vgg-mtt``: MTT_vgg, flattened pool5 (256-d) by default."""
    return MusicnnBackend("MTT_vgg", **options)
