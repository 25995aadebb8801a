"""The VGGish network in native Keras 3: (96, 64, 1) log-mel patch -> 128-d embedding.

Notebook: 03_vggish_features.

VGGish (Hershey et al., 2017) is published as a TF-Slim checkpoint and as a TF Hub SavedModel saved
non-trainable; neither can live inside a Keras 3 model, so the network is rebuilt here, its layer names
mapping one-to-one to the official variable names (:func:`official_variable_name`), and the official
weights are copied into it once (:mod:`genrelib.vggish.convert`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import WeightsError
from .frontend import N_MELS, PATCH_FRAMES
from .weights import converted_weights_path, missing_weights_message

__all__ = ["EMBEDDING_SIZE", "official_variable_name", "official_variables", "VGGish"]

EMBEDDING_SIZE = 128

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
            raise WeightsError(missing_weights_message(path))

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


def assign_official_values(model, values: dict[str, np.ndarray]) -> None:
    """Copy official variables (name -> array of the shape :func:`official_variables` gives) into the
    Keras layers of :func:`VGGish`; the caller has checked the shapes."""
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([values[official_variable_name(layer.name, "kernel")],
                               values[official_variable_name(layer.name, "bias")]])
