"""YAMNet in native Keras 3: the official front end, the MobileNet-v1 network, two weight sources converted
into one cache, the 521 AudioSet class names, and the embedding backend.

Notebook: 03_vggish_features.

YAMNet (Plakal & Ellis, 2019; tensorflow/models ``research/audioset/yamnet``) turns 0.96 s of 16 kHz
audio into a 1024-d embedding and 521 AudioSet class scores, one row every 0.48 s. It uses VGGish's
log-mel front end (log offset 0.001 instead of 0.01, patches overlapping by half) and a MobileNet-v1 body.
The network is rebuilt here layer for layer as the official ``yamnet.py`` (Keras 3 forbids ``/`` in layer
names, so ``layer2/depthwise_conv/bn`` is called ``layer2.depthwise_conv.bn``: :func:`official_layer_name`
maps back) and official weights are copied into it once and cached as ``.weights.h5``::

    genrelib weights yamnet --from-tflite yamnet_classification.tflite   # TF Hub's int8 TF-Lite file
    genrelib weights yamnet --from-h5 yamnet.h5                          # the official float Keras file
    genrelib weights yamnet --download                                   # yamnet.h5, needs internet
    genrelib weights check                                               # speech.wav must read "Speech"

Without converted weights the backend converts the TF-Lite file by itself when it finds it
(``$GENRELIB_YAMNET_TFLITE``, else ``<repo>/../shared/models/yamnet/``).

Two facts about the TF-Lite file, measured on it: batch normalisation is folded into the convolutions
(each convolution carries one int32 bias, see :func:`tflite_values` for how that bias is given back to the
official batch-norm layers exactly), and its activations are ReLU6 (every activation tensor is quantised
to [0, 6], and the tensor names say Relu6: the internal training graph was TF-Slim's MobileNet-v1). The
official float Keras code uses plain ReLU. Both are built here: :func:`YAMNet` takes ``activation="relu"``
(official code, for ``yamnet.h5``) or ``"relu6"`` (what the TF-Lite weights were made for), and the
converted cache records which one its weights need. Measured on speech.wav: the TF-Lite weights with
ReLU6 give "Speech" 0.957 (the file: 0.957031), with plain ReLU only 0.79.

TensorFlow and Keras are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from .audio import resample
from .checks import positive_int, valid_audio
from .errors import ParameterError, WeightsError
from .quiet import filtered_native_stderr
from .storage import atomic_path, cache_dir, file_digest

__all__ = [
    "SAMPLE_RATE",
    "EMBEDDING_SIZE",
    "NUM_CLASSES",
    "PATCH_FRAMES",
    "PATCH_SAMPLES",
    "PATCH_HOP_SAMPLES",
    "N_MELS",
    "FRONT_END_VERSION",
    "H5_URL",
    "TFLITE_SHA256",
    "SMOKE_TEST",
    "CLASS_NAMES",
    "class_names_from_tflite",
    "pad_waveform",
    "log_mel_spectrogram",
    "log_mel_patches",
    "YAMNet",
    "official_layer_name",
    "keras_layer_name",
    "official_layers",
    "converted_weights_path",
    "converted_weights_available",
    "converted_weights_info",
    "weights_checksum",
    "default_tflite_path",
    "tflite_values",
    "h5_values",
    "convert_tflite",
    "convert_h5",
    "download_h5",
    "embeddings",
    "class_scores",
    "top_classes",
    "smoke_test",
    "YAMNetBackend",
]

# ------------------------------------------------------------------------------------------ constants

#: Hz: the only rate the network was trained on.
SAMPLE_RATE = 16000
#: STFT window 25 ms, hop 10 ms, FFT length the next power of two (257 bins): as VGGish.
WINDOW_SAMPLES = 400
HOP_SAMPLES = 160
FFT_LENGTH = 512
N_MELS = 64
#: Added before the logarithm (params.py: 0.001; VGGish uses 0.01).
LOG_OFFSET = 0.001
#: A patch is 96 frames (0.96 s); patches start every 48 frames (0.48 s).
PATCH_FRAMES = 96
PATCH_HOP_FRAMES = 48
#: Samples one patch needs: 400 + 95 * 160 = 15 600 (0.975 s), the TF-Lite file's input length.
PATCH_SAMPLES = WINDOW_SAMPLES + (PATCH_FRAMES - 1) * HOP_SAMPLES
#: Samples between consecutive patches: 48 * 160 = 7680 (0.48 s).
PATCH_HOP_SAMPLES = PATCH_HOP_FRAMES * HOP_SAMPLES
EMBEDDING_SIZE = 1024
NUM_CLASSES = 521
#: params.py: batchnorm_epsilon (center=True, scale=False: no gamma).
BN_EPSILON = 1e-4
#: Changes whenever the front end's numbers would change (part of every embedding cache key).
FRONT_END_VERSION = "yamnet-logmel-1"

H5_URL = "https://storage.googleapis.com/audioset/yamnet.h5"
#: TF Hub lite-model/yamnet/classification/tflite/1 (as in tensorflow/tflite-support's test data).
TFLITE_SHA256 = "10c95ea3eb9a7bb4cb8bddf6feb023250381008177ac162ce169694d05c317de"
TFLITE_NAME = "yamnet_classification.tflite"
#: Google's tflite-support audio-classifier test: class 0 at 0.957031 on the last 15 600 samples of
#: speech.wav with the TF-Lite file. The float model is not that file, hence the tolerance.
SMOKE_TEST = {"clip": "speech.wav", "class": "Speech", "score": 0.957031, "atol": 0.03}

# (kernel, stride, filters) of official _YAMNET_LAYER_DEFS: layer1 a full convolution, then separable ones.
_LAYER_DEFS = (
    (3, 2, 32), (3, 1, 64), (3, 2, 128), (3, 1, 128), (3, 2, 256), (3, 1, 256), (3, 2, 512),
    (3, 1, 512), (3, 1, 512), (3, 1, 512), (3, 1, 512), (3, 1, 512), (3, 2, 1024), (3, 1, 1024),
)
_CONVERTED_NAME = "yamnet.weights.h5"
_FORMAT = "genrelib-yamnet-1"
_TFLITE_ENV = "GENRELIB_YAMNET_TFLITE"


# ------------------------------------------------------------------------------------------- labels


def _read_class_names(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def class_names_from_tflite(path: str | os.PathLike) -> tuple[str, ...]:
    """The 521 display names inside a TF-Lite file's metadata.

    A ``.tflite`` file with metadata is also a zip archive whose associated files are its members; the
    label list is the one ``.txt`` member.

    Raises
    ------
    WeightsError
        Not a zip archive, no single label file, or not 521 names.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".txt")]
            if len(members) != 1:
                raise WeightsError(f"{path}: expected one label file in its TF-Lite metadata, found {members}")
            names = _read_class_names(archive.read(members[0]).decode("utf-8"))
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsError(f"{path}: no TF-Lite metadata with a label list ({exc})") from exc
    if len(names) != NUM_CLASSES:
        raise WeightsError(f"{path}: its label list has {len(names)} names, expected {NUM_CLASSES}")
    return names


#: AudioSet display names in output order (index 0 "Speech"), as extracted once from the TF-Lite file's
#: metadata into ``genrelib/resources/yamnet_class_names.txt`` (the tests check they are equal).
CLASS_NAMES: tuple[str, ...] = _read_class_names(
    (resources.files("genrelib") / "resources" / "yamnet_class_names.txt").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------- front end


def _to_16k(y: np.ndarray, sr: int) -> np.ndarray:
    sr = positive_int(sr, "sr")
    valid_audio(y, allow_silence=True)  # checks only; silence is a valid (if quiet) input for YAMNet
    return resample(np.ascontiguousarray(y, dtype=np.float64), orig_sr=sr, target_sr=SAMPLE_RATE)


def pad_waveform(y: np.ndarray) -> np.ndarray:
    """Zero-pad 16 kHz audio as the official ``features.pad_waveform``: to at least one patch (15 600
    samples), then up to a whole number of 0.48 s hops, so the last samples are covered by a patch.

    Returns
    -------
    padded : np.ndarray [shape=(15600 + 7680 * k,)], same dtype
    """
    y = np.asarray(y)
    hops = int(np.ceil(max(0, y.size - PATCH_SAMPLES) / PATCH_HOP_SAMPLES))
    return np.pad(y, (0, PATCH_SAMPLES + hops * PATCH_HOP_SAMPLES - y.size))


def log_mel_spectrogram(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``log(mel(|STFT|) + 0.001)``: one 64-band row every 10 ms (no padding; needs >= 400 samples).

    Notebook: 03_vggish_features.

    The official ``tf.abs(tf.signal.stft(...))`` (periodic Hann window of 400 samples, 512-point FFT)
    and ``tf.signal.linear_to_mel_weight_matrix`` (VGGish's HTK filterbank, 125-7500 Hz), in float64.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio, resampled to 16 kHz when ``sr`` differs.
    sr : int > 0 [Hz]

    Returns
    -------
    log_mel : np.ndarray [shape=(1 + (n - 400) // 160, 64)], float64
    """
    from .vggish import mel_filterbank  # the same filterbank (tf.signal's; VGGish's unit test checks it)

    y = _to_16k(y, sr)
    if y.size < WINDOW_SAMPLES:
        raise ParameterError(f"need at least {WINDOW_SAMPLES} samples at 16 kHz for one STFT frame, got {y.size}")
    frames = np.lib.stride_tricks.sliding_window_view(y, WINDOW_SAMPLES)[::HOP_SAMPLES]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW_SAMPLES) / WINDOW_SAMPLES)  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames * window, FFT_LENGTH, axis=-1))
    return np.log(magnitude @ mel_filterbank() + LOG_OFFSET)


def log_mel_patches(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """YAMNet's input: 0.96 s log-mel patches every 0.48 s, after the official zero-padding.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio (any length > 0), resampled to 16 kHz when ``sr`` differs.
    sr : int > 0 [Hz]

    Returns
    -------
    patches : np.ndarray [shape=(n_patches, 96, 64)], float32
        Patch ``i`` covers samples ``[7680 i, 7680 i + 15600)`` of the padded 16 kHz audio;
        ``n_patches = 1 + ceil(max(0, n16k - 15600) / 7680)``.
    """
    log_mel = log_mel_spectrogram(pad_waveform(_to_16k(y, sr)), sr=SAMPLE_RATE)
    windows = np.lib.stride_tricks.sliding_window_view(log_mel, PATCH_FRAMES, axis=0)[::PATCH_HOP_FRAMES]
    return np.ascontiguousarray(windows.transpose(0, 2, 1), dtype=np.float32)


# ------------------------------------------------------------------------------------------- model


def official_layer_name(keras_name: str) -> str:
    """``"layer2.depthwise_conv.bn"`` -> ``"layer2/depthwise_conv/bn"`` (the official Keras 2 name)."""
    return keras_name.replace(".", "/")


def keras_layer_name(official_name: str) -> str:
    """``"layer2/depthwise_conv/bn"`` -> ``"layer2.depthwise_conv.bn"`` (Keras 3 forbids ``/``)."""
    return official_name.replace("/", ".")


def official_layers() -> dict[str, list[tuple[int, ...]]]:
    """Official layer name -> shapes of its weights in Keras order (55 layers with weights, 3 751 369
    numbers). Batch norm has ``[beta, moving_mean, moving_variance]`` (scale=False: no gamma); the
    official classifier layer is unnamed, here ``logits`` (``[kernel, bias]``)."""
    shapes: dict[str, list[tuple[int, ...]]] = {}
    channels = 1
    for number, (kernel, _, filters) in enumerate(_LAYER_DEFS, start=1):
        if number == 1:
            shapes["layer1/conv"] = [(kernel, kernel, channels, filters)]
            shapes["layer1/conv/bn"] = [(filters,)] * 3
        else:
            shapes[f"layer{number}/depthwise_conv"] = [(kernel, kernel, channels, 1)]
            shapes[f"layer{number}/depthwise_conv/bn"] = [(channels,)] * 3
            shapes[f"layer{number}/pointwise_conv"] = [(1, 1, channels, filters)]
            shapes[f"layer{number}/pointwise_conv/bn"] = [(filters,)] * 3
        channels = filters
    shapes["logits"] = [(EMBEDDING_SIZE, NUM_CLASSES), (NUM_CLASSES,)]
    return shapes


def _conv_block(x, official: str, relu: str, layers, max_value, **conv):
    """Convolution (no bias) -> batch norm -> ReLU (ReLU6 when ``max_value`` is 6): one half of the
    official _conv / _separable_conv."""
    from . import pointwise  # Conv2D's outputs; for 1x1 kernels its gradients as matrix products (fine-tuning)

    kind = layers.DepthwiseConv2D if official.endswith("depthwise_conv") else \
        pointwise.Conv2D if official.endswith("pointwise_conv") else layers.Conv2D
    x = kind(padding="same", use_bias=False, name=keras_layer_name(official), **conv)(x)
    x = layers.BatchNormalization(center=True, scale=False, epsilon=BN_EPSILON,
                                  name=keras_layer_name(f"{official}/bn"))(x)
    return layers.ReLU(max_value=max_value, name=keras_layer_name(relu))(x)


def YAMNet(*, weights: str | os.PathLike | None = None, activation: str | None = None, trainable: bool = True,
           seed: int | None = None):
    """The YAMNet network as a native Keras 3 model (3 751 369 numbers, 3 729 481 of them trainable).

    Notebook: 03_vggish_features.

    (96, 64) log-mel patch -> reshape (96, 64, 1) -> ``layer1``: 3x3 conv stride 2, 32 filters -> 13
    separable layers (3x3 depthwise + 1x1 pointwise, each with batch norm and ReLU; filters 64 ... 1024,
    stride 2 at layers 3, 5, 7 and 13) -> global average pooling (1024-d embedding) -> dense 521 logits ->
    sigmoid. SAME padding; batch norm with epsilon 1e-4, centre but no scale.

    Parameters
    ----------
    weights : None, "cached" or path
        ``None``: freshly initialised (random). ``"cached"``: the converted official weights
        (:func:`converted_weights_path`). A path: a ``.weights.h5`` file.
    activation : {"relu", "relu6"}, optional
        ``"relu"``: the official float model's (and ``yamnet.h5``'s). ``"relu6"``: ``min(max(x, 0), 6)``,
        the network the TF-Lite file encodes (see the module notes; with plain ReLU its weights give
        "Speech" 0.79 instead of 0.957 on speech.wav). Default: what the weights file records
        (:func:`convert_tflite` records ``"relu6"``, :func:`convert_h5` ``"relu"``), ``"relu"`` otherwise.
    trainable : bool
        Leave the layers trainable (fine-tuning) or freeze them.
    seed : int, optional
        Seed of the random initialisation.

    Returns
    -------
    model : keras.Model
        Input ``log_mel_patch`` [shape=(batch, 96, 64)]; outputs a dict ``predictions`` (batch, 521)
        sigmoid scores, ``embeddings`` (batch, 1024), ``logits`` (batch, 521).
    """
    import keras
    from keras import layers

    path = None
    if weights is not None:
        path = converted_weights_path() if weights == "cached" else Path(weights)
        if not path.is_file():
            raise WeightsError(_missing_weights_message(path))
    activation = activation or (_recorded_activation(path) if path is not None else "relu")
    max_value = {"relu": None, "relu6": 6.0}.get(activation, "?")
    if max_value == "?":
        raise ParameterError(f"activation={activation!r} must be 'relu' or 'relu6'")

    def init(offset: int):
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)

    inputs = keras.Input((PATCH_FRAMES, N_MELS), name="log_mel_patch")
    x = layers.Reshape((PATCH_FRAMES, N_MELS, 1), name="reshape")(inputs)
    for number, (kernel, stride, filters) in enumerate(_LAYER_DEFS, start=1):
        if number == 1:  # official names: layer1/conv, layer1/conv/bn, layer1/relu
            x = _conv_block(x, "layer1/conv", "layer1/relu", layers, max_value, filters=filters,
                            kernel_size=kernel, strides=stride, kernel_initializer=init(0))
            continue
        depthwise, pointwise = f"layer{number}/depthwise_conv", f"layer{number}/pointwise_conv"
        x = _conv_block(x, depthwise, f"{depthwise}/relu", layers, max_value, kernel_size=kernel,
                        strides=stride, depth_multiplier=1, depthwise_initializer=init(2 * number))
        x = _conv_block(x, pointwise, f"{pointwise}/relu", layers, max_value, filters=filters,
                        kernel_size=1, kernel_initializer=init(2 * number + 1))
    embeddings = layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    logits = layers.Dense(NUM_CLASSES, kernel_initializer=init(99), name="logits")(embeddings)
    predictions = layers.Activation("sigmoid", name="predictions")(logits)
    model = keras.Model(inputs, {"predictions": predictions, "embeddings": embeddings, "logits": logits},
                        name="yamnet")
    if path is not None:
        try:
            model.load_weights(path)
        except Exception as exc:  # Keras/h5py raise many types for a damaged or foreign file
            raise WeightsError(f"{path}: cannot load YAMNet weights ({type(exc).__name__}: {exc}); convert them "
                               f"again with `genrelib weights yamnet ... --overwrite`") from exc
    model.trainable = trainable
    return model


def _assign(model, values: dict[str, list[np.ndarray]]) -> None:
    """Copy official values (checked by :func:`_check_values`) into the layers, by official name."""
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(values[official_layer_name(layer.name)])


def _check_values(values: dict[str, list[np.ndarray]], *, source: str) -> None:
    """Raise one :class:`WeightsError` listing every missing, misshapen or non-finite official weight."""
    problems = []
    for name, shapes in official_layers().items():
        got = values.get(name)
        if got is None:
            problems.append(f"{name}: missing")
        elif [tuple(np.shape(v)) for v in got] != shapes:
            problems.append(f"{name}: shapes {[tuple(np.shape(v)) for v in got]}, expected {shapes}")
        elif not all(np.all(np.isfinite(v)) for v in got):
            problems.append(f"{name}: NaN or infinite values")
    if problems:
        raise WeightsError(f"{source}: not YAMNet weights ({len(problems)} problem(s)); nothing was converted:\n  "
                           + "\n  ".join(problems[:12]) + ("\n  ..." if len(problems) > 12 else ""))


# ------------------------------------------------------------------------------------ weight cache


def converted_weights_path(folder: str | os.PathLike | None = None) -> Path:
    """Where converted weights live: ``<folder or cache_dir("weights")>/yamnet.weights.h5``."""
    return Path(folder or cache_dir("weights", create=False)) / _CONVERTED_NAME


def converted_weights_available(folder: str | os.PathLike | None = None) -> bool:
    """True when converted official weights are cached (cheap: no TensorFlow import)."""
    return converted_weights_path(folder).is_file()


def converted_weights_info(folder: str | os.PathLike | None = None) -> dict[str, str]:
    """What the cache holds: ``path``, ``source``, ``source_sha256``, ``source_kind`` ("tflite" or "h5"),
    ``activation`` ("relu6" or "relu").

    Raises :class:`WeightsError` when no weights are converted.
    """
    import h5py

    path = converted_weights_path(folder)
    if not path.is_file():
        raise WeightsError(_missing_weights_message(path))
    try:
        with h5py.File(path, "r") as handle:
            attrs = {key: str(handle.attrs.get(f"genrelib_{key}", "")) for key in ("source", "source_sha256",
                                                                                   "source_kind", "activation")}
    except OSError as exc:
        raise WeightsError(f"{path}: not a readable weights file ({exc}); convert the weights again") from exc
    return {"path": str(path), **attrs}


def default_tflite_path() -> Path | None:
    """The TF-Lite file the backend converts by itself: ``$GENRELIB_YAMNET_TFLITE``, else
    ``<repo>/../shared/models/yamnet/yamnet_classification.tflite``; ``None`` when neither exists."""
    candidates = [Path(os.environ[_TFLITE_ENV]).expanduser()] if os.environ.get(_TFLITE_ENV) else []
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "models" / "yamnet" / TFLITE_NAME)
    return next((path for path in candidates if path.is_file()), None)


def _missing_weights_message(path: Path) -> str:
    return (f"no converted YAMNet weights at {path}, and no TF-Lite file to convert them from "
            f"(${_TFLITE_ENV} or ../shared/models/yamnet/{TFLITE_NAME}). Get them with\n"
            f"  genrelib weights yamnet --from-tflite {TFLITE_NAME}   (TF Hub lite-model/yamnet/classification)\n"
            f"  genrelib weights yamnet --from-h5 yamnet.h5   ({H5_URL})\n"
            f"  genrelib weights yamnet --download   (needs internet)\n"
            f"Random weights are used only when asked for explicitly (YAMNetBackend(weights='random')).")


def _recorded_activation(path: Path) -> str:
    """The activation a converted weights file was made for ("relu" when it records none)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return str(handle.attrs.get("genrelib_activation", "relu"))
    except OSError as exc:
        raise WeightsError(f"{path}: not a readable weights file ({exc}); convert the weights again") from exc


def _save_converted(values, *, source: str, source_sha256: str, source_kind: str, folder) -> Path:
    """Validate everything, then write the weights atomically; on any error the cache is unchanged."""
    import h5py

    _check_values(values, source=source)
    activation = "relu6" if source_kind == "tflite" else "relu"
    model = YAMNet(activation=activation)
    _assign(model, values)
    target = converted_weights_path(folder)
    with atomic_path(target) as tmp:
        model.save_weights(tmp)
        with h5py.File(tmp, "a") as handle:
            handle.attrs.update({"genrelib_format": _FORMAT, "genrelib_source": source,
                                 "genrelib_source_sha256": source_sha256, "genrelib_source_kind": source_kind,
                                 "genrelib_activation": activation})
    return target


# --------------------------------------------------------------------------------- TF-Lite source


def _tflite_interpreter(path: Path, *, preserve_all_tensors: bool = False):
    """``tf.lite.Interpreter`` without its deprecation warning (it still works in TF 2.21) or its native INFO line."""
    with warnings.catch_warnings(), filtered_native_stderr():  # its "Created ... XNNPACK delegate" INFO line
        warnings.simplefilter("ignore")
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_path=str(path),
                                          experimental_preserve_all_tensors=preserve_all_tensors)
        interpreter.allocate_tensors()
    return interpreter


def _dequantize(values: np.ndarray, quantization: dict) -> np.ndarray:
    """Real values of int8 / int32 tensor data: ``(q - zero_point) * scale`` along the quantised axis."""
    scales, zeros = quantization["scales"], quantization["zero_points"]
    shape = [1] * values.ndim
    if scales.size > 1:
        shape[quantization["quantized_dimension"]] = scales.size
    return ((values.astype(np.float64) - zeros.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


def _official_name(tflite_layer: int) -> str:
    """TF-Lite ``layerN`` (1..27 convolutions, 29 the classifier) -> official Keras layer name."""
    if tflite_layer == 1:
        return "layer1/conv"
    if tflite_layer == 29:
        return "logits"
    kind = "depthwise_conv" if tflite_layer % 2 == 0 else "pointwise_conv"
    return f"layer{tflite_layer // 2 + 1}/{kind}"


def _tflite_layer(name: str) -> int | None:
    match = re.search(r"layer(\d+)/", name)
    return int(match.group(1)) if match else None


def tflite_values(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Official layer name -> float32 weights, dequantised from the TF-Lite file.

    The file's 27 int8 convolution kernels are per-output-channel quantised (their tensors carry one
    scale per channel) and their biases are int32 with scale ``input_scale * weight_scale``; both are
    dequantised with their own tensor's scales. Batch norm was folded into the convolutions at export,
    which left one bias ``b`` per convolution and nothing else. The official network has no convolution
    bias but a batch norm after each convolution computing ``(x - mean) / sqrt(var + eps) + beta``; with
    ``mean = 0``, ``var = 1 - eps`` and ``beta = b`` it computes ``x + b`` exactly: ``1 - eps`` is chosen
    so that ``float32(var + eps) == 1.0`` (checked below), so the scale is exactly 1.

    Returns
    -------
    dict
        As :func:`official_layers`: kernels in Keras layout ``(kh, kw, in, out)`` (depthwise
        ``(kh, kw, channels, 1)``), batch norm ``[beta, moving_mean, moving_variance]``, ``logits``
        ``[kernel (1024, 521), bias (521,)]``.
    """
    interpreter = _tflite_interpreter(Path(path))
    kernels, biases = {}, {}
    for detail in interpreter.get_tensor_details():
        quantization, shape = detail["quantization_parameters"], tuple(detail["shape"])
        layer = _tflite_layer(detail["name"])
        # Constant weights are the per-channel quantised tensors (activations share one scale), plus
        # the classifier's matrix; each appears once, in graph order.
        if layer is None or layer in kernels and layer in biases:
            continue
        per_channel = quantization["scales"].size > 1
        if detail["dtype"] == np.int8 and (per_channel and len(shape) == 4 or shape == (NUM_CLASSES, EMBEDDING_SIZE)):
            kernels.setdefault(layer, _dequantize(interpreter.get_tensor(detail["index"]), quantization))
        elif detail["dtype"] == np.int32 and len(shape) == 1 and quantization["scales"].size in (1, shape[0]):
            biases.setdefault(layer, _dequantize(interpreter.get_tensor(detail["index"]), quantization))
    return _folded_values(kernels, biases, source=str(path))


def _folded_values(kernels: dict[int, np.ndarray], biases: dict[int, np.ndarray], *, source: str):
    """Keras-layout weights from TF-Lite kernels ``(out, kh, kw, in)`` / depthwise ``(1, kh, kw, c)`` and
    folded biases, each bias handed to the following batch norm (see :func:`tflite_values`)."""
    unity = np.float32(1.0) - np.float32(BN_EPSILON)
    assert unity + np.float32(BN_EPSILON) == np.float32(1.0)
    missing = sorted(set(range(1, 28)) - set(kernels) | set(range(1, 28)) - set(biases) |
                     ({29} - set(kernels)) | ({29} - set(biases)))
    if missing:
        raise WeightsError(f"{source}: no weights or bias for TF-Lite layer(s) {missing}: not the YAMNet "
                           f"classification file ({TFLITE_NAME}); nothing was converted")
    values = {}
    for layer in range(1, 28):
        name, kernel, bias = _official_name(layer), kernels[layer], biases[layer]
        keras_kernel = kernel[0][..., None] if name.endswith("depthwise_conv") else kernel.transpose(1, 2, 3, 0)
        values[name] = [keras_kernel]
        values[f"{name}/bn"] = [bias, np.zeros_like(bias), np.full_like(bias, unity)]
    values["logits"] = [kernels[29].T.copy(), biases[29]]
    return values


def convert_tflite(
    path: str | os.PathLike,
    *,
    sha256: str | None = TFLITE_SHA256,
    folder: str | os.PathLike | None = None,
) -> Path:
    """Convert TF Hub's YAMNet classification TF-Lite file into the Keras weights cache.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    path : path
        ``yamnet_classification.tflite`` (int8 weights, batch norm folded; see :func:`tflite_values`).
    sha256 : str or None
        Expected SHA-256 (default: the official file's); ``None`` accepts another file with YAMNet's layers.
    folder : path, optional
        Cache folder; default ``cache_dir("weights")``.

    Returns
    -------
    Path
        The converted ``yamnet.weights.h5``.

    Raises
    ------
    WeightsError
        Missing file, checksum mismatch, not a TF-Lite model, missing or misshapen layers. The cache is
        left exactly as it was.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such TF-Lite file (expected {TFLITE_NAME})")
    digest = file_digest(path)
    if sha256 is not None and digest != sha256:
        raise WeightsError(f"{path}: sha256 {digest} differs from the expected {sha256} (a truncated or different "
                           f"file?); pass sha256=None (CLI: --sha256 none) to convert another YAMNet TF-Lite "
                           f"file; the cache was not touched")
    # The TF-Lite interpreter kills the process (segmentation fault) on a truncated file instead of raising.
    # The label list is a zip archive at the end of the file, so reading it first turns any truncation into
    # a WeightsError; it must also be YAMNet's list, since the port names its outputs with CLASS_NAMES.
    if class_names_from_tflite(path) != CLASS_NAMES:
        raise WeightsError(f"{path}: its label list is not YAMNet's 521 AudioSet classes; the cache was not touched")
    try:
        values = tflite_values(path)
    except WeightsError:
        raise
    except (ValueError, RuntimeError, OSError) as exc:  # the interpreter's errors for a foreign file
        raise WeightsError(f"{path}: not a readable TF-Lite model ({type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
                           f"the cache was not touched") from exc
    return _save_converted(values, source=str(path), source_sha256=digest, source_kind="tflite", folder=folder)


# ------------------------------------------------------------------------------------ Keras 2 h5 source


def _h5_names(group, attribute: str) -> list[str]:
    """A Keras 2 name-list attribute; Keras 2 splits long lists into ``<attribute>0``, ``<attribute>1``..."""
    if attribute in group.attrs:
        chunks = [group.attrs[attribute]]
    else:
        chunks, index = [], 0
        while f"{attribute}{index}" in group.attrs:
            chunks.append(group.attrs[f"{attribute}{index}"])
            index += 1
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for chunk in chunks for n in chunk]


def _h5_layers(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Layer name -> {weight name without scope and ``:0``: value} of a Keras 2 ``save_weights`` file."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            root = handle["model_weights"] if "model_weights" in handle else handle  # model.save() files too
            layer_names = _h5_names(root, "layer_names")
            if not layer_names:
                raise WeightsError(f"{path}: not a Keras 2 HDF5 weights file (no 'layer_names' attribute); "
                                   f"expected the official yamnet.h5 ({H5_URL})")
            layers = {}
            for name in layer_names:
                group = root[name]
                weights = {w.split("/")[-1].split(":")[0]: np.asarray(group[w], dtype=np.float32)
                           for w in _h5_names(group, "weight_names")}
                if weights:
                    layers[name] = weights
    except (OSError, KeyError) as exc:
        raise WeightsError(f"{path}: not a readable HDF5 weights file ({exc})") from exc
    return layers


_KERAS2_ORDER = {"conv": ["kernel"], "depthwise_conv": ["depthwise_kernel"], "pointwise_conv": ["kernel"],
                 "bn": ["beta", "moving_mean", "moving_variance"], "logits": ["kernel", "bias"]}


def h5_values(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Official layer name -> weights, read from the official float ``yamnet.h5``.

    That file is Keras 2's ``model.save_weights`` of the official ``yamnet_frames_model``: a
    ``layer_names`` attribute at the root, one group per layer (``/`` in a name nests groups), each
    with a ``weight_names`` attribute naming its datasets ``<layer>/<weight>:0``. Convolution and
    batch-norm layers are found by their official names; the classifier, unnamed in the official code
    (``dense`` or ``dense_<n>``), is the one layer with a 1024 x 521 kernel.
    """
    path = Path(path)
    layers = _h5_layers(path)
    values = {}
    for name in official_layers():
        if name == "logits":
            found = [w for w in layers.values() if np.shape(w.get("kernel")) == (EMBEDDING_SIZE, NUM_CLASSES)]
            weights = found[0] if len(found) == 1 else None
        else:
            weights = layers.get(name)
        kind = "logits" if name == "logits" else name.split("/")[-1]
        if weights is not None and all(key in weights for key in _KERAS2_ORDER[kind]):
            values[name] = [weights[key] for key in _KERAS2_ORDER[kind]]
    return values


def convert_h5(path: str | os.PathLike, *, folder: str | os.PathLike | None = None) -> Path:
    """Convert the official float Keras weights ``yamnet.h5`` into the Keras 3 weights cache.

    Notebook: 03_vggish_features.

    No checksum of the official file is published; the file's SHA-256 is recorded in the cache.

    Returns
    -------
    Path
        The converted ``yamnet.weights.h5``.

    Raises
    ------
    WeightsError
        Missing or unreadable file, missing or misshapen layers; the cache is left as it was.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file (expected yamnet.h5 from {H5_URL})")
    values = h5_values(path)
    return _save_converted(values, source=str(path), source_sha256=file_digest(path), source_kind="h5",
                           folder=folder)


def download_h5(dest: str | os.PathLike | None = None, *, url: str = H5_URL, force_overwrite: bool = False,
                progress: bool = True, timeout: float = 60.0) -> Path:
    """Download the official ``yamnet.h5`` (about 15 MB) into ``cache_dir("downloads")``.

    Google publishes no checksum for it, so none is checked (and none is made up here); the digest of
    what was downloaded is recorded in the converted cache by :func:`convert_h5`.
    """
    from .data import download_verified

    dest = Path(dest) if dest else cache_dir("downloads") / "yamnet.h5"
    if dest.is_file() and not force_overwrite:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    return download_verified([url], dest, digest=None, progress=progress, timeout=timeout)


# ------------------------------------------------------------------------------------------ use


def _default_backend():
    from .embed import get_backend

    return get_backend("yamnet")


def embeddings(y: np.ndarray, *, sr: int) -> np.ndarray:
    """YAMNet embeddings of a waveform, one row per 0.96 s patch every 0.48 s.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio; resampled to 16 kHz (soxr) when ``sr`` differs, then zero-padded as the official code.
    sr : int > 0 [Hz]

    Returns
    -------
    np.ndarray [shape=(n_patches, 1024)], float32
        Global average of the last ReLU layer (non-negative).
    """
    return _default_backend().embed_patches(log_mel_patches(y, sr=sr))


def class_scores(y: np.ndarray, *, sr: int) -> np.ndarray:
    """AudioSet class scores of a waveform: sigmoid outputs [shape=(n_patches, 521)] in :data:`CLASS_NAMES`
    order, one row per 0.96 s patch every 0.48 s (as :func:`embeddings`)."""
    return _default_backend().score_patches(log_mel_patches(y, sr=sr))


def top_classes(y: np.ndarray, *, sr: int, top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` AudioSet classes of a clip: scores averaged over its patches, highest first.

    Returns
    -------
    list of (class name, score in [0, 1])
    """
    top = positive_int(top, "top")
    mean = class_scores(y, sr=sr).mean(axis=0)
    order = np.argsort(-mean, kind="stable")[:top]
    return [(CLASS_NAMES[i], float(mean[i])) for i in order]


def smoke_test(*, folder: str | os.PathLike | None = None, clip: str | os.PathLike | None = None) -> dict:
    """Google's tflite-support check on the converted weights: the last 15 600 samples of ``speech.wav``
    must score class 0 "Speech" highest, within 0.03 of the TF-Lite file's 0.957031.

    Parameters
    ----------
    clip : path, optional
        ``speech.wav`` (16 kHz mono); default: beside :func:`default_tflite_path`.

    Returns
    -------
    dict
        ``clip``, ``top_class``, ``score`` (of "Speech"), ``expected``, ``ok``.

    Raises
    ------
    WeightsError
        No converted weights, or no ``speech.wav`` to test with.
    """
    from . import audio

    tflite = default_tflite_path()
    clip = Path(clip) if clip else (tflite.parent / SMOKE_TEST["clip"] if tflite else None)
    if clip is None or not clip.is_file():
        raise WeightsError(f"{clip or SMOKE_TEST['clip']}: no speech.wav to run the YAMNet check with (it lies "
                           f"beside {TFLITE_NAME} in tensorflow/tflite-support's test data)")
    backend = YAMNetBackend(weights=converted_weights_path(folder), folder=folder)
    y = audio.load(clip, sr=SAMPLE_RATE)[-PATCH_SAMPLES:]
    scores = backend.score_patches(log_mel_patches(y, sr=SAMPLE_RATE))[0]
    top, speech = CLASS_NAMES[int(np.argmax(scores))], float(scores[CLASS_NAMES.index(SMOKE_TEST["class"])])
    ok = top == SMOKE_TEST["class"] and abs(speech - SMOKE_TEST["score"]) <= SMOKE_TEST["atol"]
    return {"clip": str(clip), "top_class": top, "score": speech, "expected": SMOKE_TEST["score"], "ok": ok}


# ---------------------------------------------------------------------------------------- backend


class YAMNetBackend:
    """YAMNet as a ``genrelib.embed`` backend: 16 kHz audio -> one 1024-d vector per 0.96 s, every 0.48 s.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    weights : "cached", "random" or path
        ``"cached"`` (default): the converted official weights; when none are cached, the TF-Lite file
        of :func:`default_tflite_path` is converted first, else a :class:`WeightsError` says how to get
        them. ``"random"``: seeded random weights (tests, benchmarks). A path: a ``.weights.h5`` file.
    batch_size : int > 0
        Patches per forward pass.
    seed : int
        Seed of ``weights="random"``.
    folder : path, optional
        Weight cache folder; default ``cache_dir("weights")``.

    Notes
    -----
    Offers ``features(y)`` and ``embed_patches(patches)`` for ``embed_dataset``'s batching, and
    ``score_patches(patches)`` for the 521 class scores.
    """

    name = "yamnet"
    sample_rate = SAMPLE_RATE
    embedding_dim = EMBEDDING_SIZE
    patch_seconds = PATCH_FRAMES * HOP_SAMPLES / SAMPLE_RATE
    patch_hop_seconds = PATCH_HOP_FRAMES * HOP_SAMPLES / SAMPLE_RATE
    front_end_version = FRONT_END_VERSION

    def __init__(self, *, weights: str | os.PathLike = "cached", batch_size: int = 64, seed: int = 0,
                 folder: str | os.PathLike | None = None):
        self.batch_size = positive_int(batch_size, "batch_size")
        if weights == "random":
            self.model = YAMNet(seed=seed, trainable=False)
        else:
            self.model = YAMNet(weights=_backend_weights_path(weights, folder), trainable=False)
        self._weights_checksum = _backend_weights_checksum(weights, seed=seed, folder=folder)
        self._forward = None

    @classmethod
    def describe(cls, *, weights: str | os.PathLike = "cached", batch_size: int = 64, seed: int = 0,
                 folder: str | os.PathLike | None = None):
        """The :class:`genrelib.embed.BackendInfo` of the backend these options make, read from the weight
        file without building the network (converting the TF-Lite file first, as the backend would)."""
        from .embed import BackendInfo

        positive_int(batch_size, "batch_size")
        checksum = _backend_weights_checksum(weights, seed=seed, folder=folder)
        return BackendInfo.of(cls, weights_checksum=checksum)

    def weights_checksum(self) -> str:
        """The converted source's SHA-256 (or ``random-glorot-seed<N>``)."""
        return self._weights_checksum

    def features(self, y: np.ndarray) -> np.ndarray:
        """Log-mel patches [shape=(n_patches, 96, 64)] of 16 kHz audio (:func:`log_mel_patches`)."""
        return log_mel_patches(y, sr=self.sample_rate)

    def embed(self, y: np.ndarray) -> np.ndarray:
        """Embeddings [shape=(n_patches, 1024)] of mono 16 kHz audio [shape=(n,)]."""
        return self.embed_patches(self.features(y))

    def embed_patches(self, patches: np.ndarray) -> np.ndarray:
        """Embeddings [shape=(n, 1024)] of log-mel patches [shape=(n, 96, 64)]."""
        return self._outputs(patches, "embeddings")

    def score_patches(self, patches: np.ndarray) -> np.ndarray:
        """Sigmoid class scores [shape=(n, 521)] of log-mel patches [shape=(n, 96, 64)]."""
        return self._outputs(patches, "predictions")

    def _outputs(self, patches: np.ndarray, key: str) -> np.ndarray:
        import tensorflow as tf

        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise ParameterError(f"patches must have shape (n, {PATCH_FRAMES}, {N_MELS}), got {patches.shape}")
        if self._forward is None:
            model = self.model
            self._forward = tf.function(lambda x: model(x, training=False), autograph=False,
                                        input_signature=[tf.TensorSpec([None, PATCH_FRAMES, N_MELS])])
        width = EMBEDDING_SIZE if key == "embeddings" else NUM_CLASSES
        chunks = [self._forward(tf.constant(patches[start:start + self.batch_size]))[key].numpy()
                  for start in range(0, len(patches), self.batch_size)]
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, width), np.float32)


def _backend_weights_path(weights: str | os.PathLike, folder: str | os.PathLike | None) -> Path:
    """The weight file of ``YAMNetBackend(weights=...)``; a missing cached one is converted from the TF-Lite
    file of :func:`default_tflite_path` first, when there is one (once; later runs read the cache)."""
    path = converted_weights_path(folder) if weights == "cached" else Path(weights)
    if weights == "cached" and not path.is_file() and default_tflite_path() is not None:
        convert_tflite(default_tflite_path(), folder=folder)
    return path


def _backend_weights_checksum(weights: str | os.PathLike, *, seed: int, folder: str | os.PathLike | None) -> str:
    """:meth:`YAMNetBackend.weights_checksum` for these options, from the file alone."""
    if weights == "random":
        return f"random-glorot-seed{seed}"
    path = _backend_weights_path(weights, folder)
    if not path.is_file():
        raise WeightsError(_missing_weights_message(path))
    return weights_checksum(path)


def weights_checksum(path: str | os.PathLike) -> str:
    """The identity of a converted YAMNet ``.weights.h5``, as embedding caches and fine-tuning runs record it: the
    source's SHA-256 recorded at conversion (reading it costs nothing), else the file's own SHA-256.

    Raises :class:`WeightsError` when the file cannot be read.
    """
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            recorded = str(handle.attrs.get("genrelib_source_sha256", ""))
    except OSError as exc:
        raise WeightsError(f"{path}: not a readable weights file ({exc})") from exc
    return recorded or file_digest(path)
