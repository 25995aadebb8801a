"""The paper's classifier: a small CNN over a clip's sequence of embeddings.

Notebook: 04_cnn_training.

A 30 s clip becomes ``n_patches`` embedding vectors (31 x 128 for VGGish, one per 0.96 s). The network
convolves along the patch axis - convolution + ReLU + max-pooling blocks - then flattens, passes one fully
connected ReLU layer, dropout (0.6, the paper's Table 1) and a softmax over the ten genres. The paper gives
neither layer counts nor sizes; ours are in :class:`genrelib.config.ModelConfig`, with the reasons.

Every clip must have the same number of patches: :func:`fit_patches` crops longer clips around their
centre and fills shorter ones (clips shorter than 30 s, time-stretched copies) by repeating them.
"""

from __future__ import annotations

import numpy as np

from .checks import in_range, one_of, positive_int
from .config import GENRES, ModelConfig
from .errors import ParameterError

__all__ = ["PAD_MODES", "fit_patches", "stack_patches", "build_classifier", "floored_variance", "layer_table"]

#: Ways of filling a clip that has fewer patches than the model expects.
PAD_MODES = ("repeat", "zero")


def fit_patches(embedding: np.ndarray, *, n_patches: int, pad_mode: str = "repeat") -> np.ndarray:
    """Crop or pad one clip's embedding sequence to exactly ``n_patches`` rows.

    Notebook: 04_cnn_training.

    Parameters
    ----------
    embedding : np.ndarray [shape=(n, d)]
        One clip, ``n >= 1`` patches of dimension ``d``.
    n_patches : int > 0
        Rows the classifier expects (31 for a 30 s clip with VGGish).
    pad_mode : {"repeat", "zero"}
        ``"repeat"`` continues the clip from its start (rows ``0, 1, ..., n-1, 0, 1, ...``), as if the
        music went on, so every row is a real embedding; ``"zero"`` appends rows of zeros.

    Returns
    -------
    np.ndarray [shape=(n_patches, d)], float32
        A clip longer than ``n_patches`` keeps its central ``n_patches`` rows (the first of the two middle
        windows when the surplus is odd): fade-ins and fade-outs are the least typical parts of a track.
    """
    n_patches = positive_int(n_patches, "n_patches")
    one_of(pad_mode, PAD_MODES, "pad_mode")
    embedding = np.asarray(embedding)
    if embedding.ndim != 2 or embedding.shape[0] == 0:
        raise ParameterError(f"embedding must have shape (n_patches >= 1, d), got {embedding.shape}")
    n = embedding.shape[0]
    if n >= n_patches:
        start = (n - n_patches) // 2
        return np.ascontiguousarray(embedding[start:start + n_patches], dtype=np.float32)
    if pad_mode == "repeat":
        return np.ascontiguousarray(embedding[np.arange(n_patches) % n], dtype=np.float32)
    padding = np.zeros((n_patches - n, embedding.shape[1]), dtype=np.float32)
    return np.concatenate([embedding.astype(np.float32), padding])


def stack_patches(embeddings, *, n_patches: int, pad_mode: str = "repeat") -> np.ndarray:
    """:func:`fit_patches` on each clip, stacked into the network's input.

    Parameters
    ----------
    embeddings : sequence of np.ndarray [shape=(n_i, d)]
        All clips must share ``d``.

    Returns
    -------
    np.ndarray [shape=(n_clips, n_patches, d)], float32
    """
    embeddings = list(embeddings)
    if not embeddings:
        raise ParameterError("no embeddings to stack")
    dims = {np.shape(e)[-1] for e in embeddings}
    if len(dims) != 1:
        raise ParameterError(f"embeddings have different dimensions {sorted(dims)}; were they made by one backend?")
    return np.stack([fit_patches(e, n_patches=n_patches, pad_mode=pad_mode) for e in embeddings])


def _check_config(config: ModelConfig) -> None:
    if not isinstance(config, ModelConfig):
        raise ParameterError(f"config must be a genrelib.config.ModelConfig, got {type(config).__name__}")
    if not config.conv_filters:
        raise ParameterError("conv_filters=() must name at least one convolution block")
    for filters in config.conv_filters:
        positive_int(filters, "conv_filters")
    positive_int(config.kernel_size, "kernel_size")
    positive_int(config.pool_size, "pool_size")
    positive_int(config.dense_units, "dense_units")
    if in_range(config.dropout_rate, 0.0, 1.0, "dropout_rate") == 1.0:
        raise ParameterError("dropout_rate=1.0 would drop every unit; use a value in [0, 1)")
    in_range(config.variance_floor, 0.0, 1.0, "variance_floor")
    one_of(config.pad_mode, PAD_MODES, "pad_mode")


def build_classifier(*, n_patches: int, embedding_dim: int, n_classes: int = len(GENRES),
                     config: ModelConfig = ModelConfig(), normalization_data: np.ndarray | None = None):
    """The paper's CNN, uncompiled (:func:`genrelib.train.fit_classifier` compiles it with Table 1).

    Notebook: 04_cnn_training.

    Parameters
    ----------
    n_patches : int > 0
        Patches per clip (the input's time axis).
    embedding_dim : int > 0
        Dimension of one patch's embedding (128 for VGGish, 200 for musicnn's penultimate layer).
    n_classes : int >= 2
        Genres (10 for GTZAN).
    config : ModelConfig
        Layer sizes, dropout and whether to standardise the input.
    normalization_data : np.ndarray [shape=(n_clips, n_patches, embedding_dim)], optional
        Training clips whose per-dimension mean and variance the ``Normalization`` layer adopts; without
        them (and with ``config.standardize``) the layer starts as the identity (mean 0, variance 1), e.g.
        before weights are loaded from a checkpoint.

    Returns
    -------
    keras.Model
        Input ``(n_patches, embedding_dim)`` -> [Normalization] -> ``len(conv_filters)`` x (Conv1D "same" +
        ReLU -> MaxPooling1D "same") -> Flatten -> Dense + ReLU -> Dropout -> Dense + softmax ``(n_classes,)``.
    """
    import keras

    n_patches = positive_int(n_patches, "n_patches")
    embedding_dim = positive_int(embedding_dim, "embedding_dim")
    if positive_int(n_classes, "n_classes") < 2:
        raise ParameterError(f"n_classes={n_classes} must be at least 2")
    _check_config(config)
    layers = keras.layers
    inputs = keras.Input(shape=(n_patches, embedding_dim), name="embeddings")
    x = inputs
    if config.standardize:
        # Without mean/variance arguments the statistics are weights (saved with the model), initialised
        # to the identity (mean 0, variance 1).
        normalize = layers.Normalization(axis=-1, name="standardize")
        x = normalize(x)
        if normalization_data is not None:
            _adopt_statistics(normalize, normalization_data, embedding_dim,
                              variance_floor=config.variance_floor)
    for block, filters in enumerate(config.conv_filters, start=1):
        x = layers.Conv1D(filters, config.kernel_size, padding="same", activation="relu", name=f"conv{block}")(x)
        x = layers.MaxPooling1D(config.pool_size, padding="same", name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(config.dense_units, activation="relu", name="dense")(x)
    x = layers.Dropout(config.dropout_rate, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="genre")(x)
    return keras.Model(inputs, outputs, name="genre_cnn")


def _adopt_statistics(normalize, data: np.ndarray, embedding_dim: int, *, variance_floor: float) -> None:
    """Give the Normalization layer the per-dimension mean and variance of the training clips (all
    patches pooled), each variance at least ``variance_floor`` times their mean (see
    :class:`genrelib.config.ModelConfig`)."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 3 or data.shape[-1] != embedding_dim:
        raise ParameterError(f"normalization_data must have shape (n_clips, n_patches, {embedding_dim}), "
                             f"got {data.shape}")
    normalize.adapt(data)
    mean, variance, count = normalize.get_weights()
    floored = floored_variance(variance, variance_floor=variance_floor)
    # Only touch the weights when a dimension is floored, so models without one are bit-identical to
    # those trained before the floor existed.
    if np.any(floored != variance):
        normalize.set_weights([mean, floored, count])
        normalize.finalize_state()


def floored_variance(variance: np.ndarray, *, variance_floor: float) -> np.ndarray:
    """Per-dimension variances raised to at least ``variance_floor`` times their mean, in float32, as the
    CNN's standardisation layer uses them (:class:`genrelib.config.ModelConfig`).

    Parameters
    ----------
    variance : np.ndarray [shape=(embedding_dim,)]
    variance_floor : float in [0, 1]

    Returns
    -------
    np.ndarray [shape=(embedding_dim,)], float32
    """
    variance = np.asarray(variance, dtype=np.float32)
    floor = np.float32(in_range(variance_floor, 0.0, 1.0, "variance_floor")) * variance.mean(dtype=np.float32)
    return np.maximum(variance, floor)


def layer_table(model) -> list[dict]:
    """One row per layer of a built model: ``name``, ``kind`` (class), ``output_shape`` (without the
    batch axis), ``params`` and a short ``detail`` (filters x kernel, pool, units, rate, activation).

    Notebook: 04_cnn_training. This is what :func:`genrelib.plots.fig4_cnn_architecture` draws, so the
    figure is read from the model and cannot disagree with it.
    """
    rows = []
    for layer in model.layers:
        config = layer.get_config()
        shape = tuple(layer.output.shape[1:])
        detail = ""
        if "filters" in config:
            detail = f"{config['filters']} x {config['kernel_size'][0]}, {config['activation']}"
        elif "pool_size" in config:
            detail = f"pool {config['pool_size'][0]}"
        elif "units" in config:
            detail = f"{config['units']} units, {config['activation']}"
        elif "rate" in config:
            detail = f"rate {config['rate']}"
        elif type(layer).__name__ == "Normalization":
            detail = "per-dimension mean / std"
        rows.append({"name": layer.name, "kind": type(layer).__name__, "output_shape": shape,
                     "params": int(layer.count_params()), "detail": detail})
    return rows
