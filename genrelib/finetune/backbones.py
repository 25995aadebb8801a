"""Backbones for fine-tuning: the registry, loading a pretrained network cut at its embedding, and which layers train.

Notebook: 06_fine_tuning.

Batch normalisation stays in inference mode throughout: every ``BatchNormalization`` layer is frozen
(``trainable=False``, its moving statistics and scale/offset untouched). Passing ``training=False`` when
calling the backbone is not enough in Keras 3.15: a functional model propagates the outer ``training=True``
into nested models, so a trainable batch-norm layer would normalise with batch statistics.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..checks import one_of
from ..errors import GenrelibError, ParameterError

__all__ = ["BACKBONES", "Backbone", "load_backbone", "unfreeze_top", "block_table"]

_MUSICNN_BLOCKS = (
    ("pool_norm", "penultimate_dense", "penultimate"),
    ("mid_3_conv", "mid_3_norm"),
    ("mid_2_conv", "mid_2_norm"),
    ("mid_1_conv", "mid_1_norm"),
    tuple(f"{block}_{part}" for block in ("timbral_38", "timbral_67", "temporal_128", "temporal_64", "temporal_32")
          for part in ("conv", "norm")),
)
_VGG_BLOCKS = tuple((f"block{block}_conv", f"block{block}_norm") for block in range(5, 0, -1))
_VGGISH_BLOCKS = (("fc2",), ("fc1_1", "fc1_2"), ("conv4_1", "conv4_2"), ("conv3_1", "conv3_2"), ("conv2",),
                  ("conv1",))
#: YAMNet's blocks are the official layers: ``layer14`` ... ``layer2``, each one depthwise-separable convolution
#: (3x3 depthwise conv + batch norm + ReLU, then 1x1 pointwise conv + batch norm + ReLU), and ``layer1``, the
#: full 3x3 convolution with its batch norm. The batch norms are listed but never train; the classifier
#: (``logits``) is above the embedding and not part of the backbone.
_YAMNET_BLOCKS = (*(tuple(f"layer{number}.{part}" for part in ("depthwise_conv", "depthwise_conv.bn",
                                                                  "pointwise_conv", "pointwise_conv.bn"))
                    for number in range(14, 1, -1)), ("layer1.conv", "layer1.conv.bn"))


@dataclasses.dataclass(frozen=True)
class _Spec:
    family: str  # "musicnn" (the port's four networks), "vggish" or "yamnet"
    network: str  # musicnn.MODELS entry, "vggish" or "yamnet"
    output: str  # the embedding layer: the one genrelib.embed's backend of the same name uses
    blocks: tuple[tuple[str, ...], ...]  # top first


#: Registry name (as in :data:`genrelib.embed.BACKENDS`) -> backbone: network, embedding layer and the blocks
#: ``unfreeze`` counts, top first. Batch-norm layers listed in a block stay frozen.
BACKBONES = {
    "musicnn-msd": _Spec("musicnn", "MSD_musicnn", "penultimate", _MUSICNN_BLOCKS),
    "musicnn-mtt": _Spec("musicnn", "MTT_musicnn", "penultimate", _MUSICNN_BLOCKS),
    "vgg-msd": _Spec("musicnn", "MSD_vgg", "pool5_flat", _VGG_BLOCKS),
    "vgg-mtt": _Spec("musicnn", "MTT_vgg", "pool5_flat", _VGG_BLOCKS),
    "vggish": _Spec("vggish", "vggish", "fc2", _VGGISH_BLOCKS),
    "yamnet": _Spec("yamnet", "yamnet", "global_average_pooling2d", _YAMNET_BLOCKS),
}


@dataclasses.dataclass
class Backbone:
    """A pretrained network cut at its embedding layer, with its front end.

    Attributes
    ----------
    name : str
        Registry name (a key of :data:`BACKBONES`).
    model : keras.Model
        One log-mel patch [shape=(batch, *patch_shape)] -> its embedding [shape=(batch, embedding_dim)].
    blocks : tuple of tuple of str
        Layer names of each block ``unfreeze`` counts, top first.
    sample_rate : int [Hz]
    patch_shape : tuple of int
        ``(187, 96)`` frames x mel bands for musicnn and vgg (2.99 s), ``(96, 64)`` for VGGish and YAMNet
        (0.96 s; YAMNet's patches start every 0.48 s, VGGish's every 0.96 s).
    patch_seconds : float [s]
    front_end_version : str
        Changes whenever the front end's numbers would (part of the patch cache key).
    weights_checksum : str
        Identifies the pretrained weights (part of every cache and run key).
    """

    name: str
    model: Any
    blocks: tuple[tuple[str, ...], ...]
    sample_rate: int
    patch_shape: tuple[int, ...]
    patch_seconds: float
    front_end_version: str
    weights_checksum: str

    @property
    def embedding_dim(self) -> int:
        return int(self.model.output.shape[-1])

    def patches(self, y: np.ndarray) -> np.ndarray:
        """Log-mel patches [shape=(n_patches, *patch_shape)], float32, of mono audio at :attr:`sample_rate`."""
        if BACKBONES[self.name].family == "vggish":
            from .. import vggish

            return vggish.log_mel_patches(y, sr=self.sample_rate)
        if BACKBONES[self.name].family == "yamnet":
            from .. import yamnet

            return yamnet.log_mel_patches(y, sr=self.sample_rate)
        from .. import musicnn

        return musicnn.to_patches(musicnn.log_mel(y, sr=self.sample_rate))


def load_backbone(name: str = "musicnn-msd", *, weights: str | os.PathLike | None = None, seed: int = 0) -> Backbone:
    """A pretrained backbone by registry name, every layer frozen (see :func:`unfreeze_top`).

    Notebook: 06_fine_tuning.

    Parameters
    ----------
    name : str
        A key of :data:`BACKBONES`: ``"musicnn-msd"`` (default), ``"musicnn-mtt"``, ``"vgg-msd"``,
        ``"vgg-mtt"``, ``"vggish"`` or ``"yamnet"``.
    weights : None, "random" or path
        VGGish and YAMNet only: ``None`` the converted official weights (``genrelib weights vggish``;
        for YAMNet the TF-Lite file is converted on first use, as the ``yamnet`` embedding backend does),
        ``"random"`` seeded random weights (tests, timing), or a ``.weights.h5`` file. The musicnn networks
        always load the checkpoints of the installed ``musicnn`` package.
    seed : int
        Seed of ``weights="random"``.

    Returns
    -------
    Backbone
        A new, independent Keras model on every call (safe to fine-tune).
    """
    import keras

    spec = BACKBONES[one_of(name, tuple(BACKBONES), "backbone")]
    if spec.family == "musicnn":
        if weights is not None:
            raise ParameterError(f"weights={weights!r}: the musicnn backbones load the installed checkpoints only")
        from .. import musicnn

        network = musicnn.load_model(spec.network)
        model = keras.Model(network.input, network.get_layer(spec.output).output, name=name)
        checksum = musicnn.checkpoint_checksum(musicnn.checkpoint_prefix(spec.network))
        patch_shape, patch_seconds = (musicnn.PATCH_FRAMES, musicnn.N_MELS), musicnn.PATCH_SECONDS
        sample_rate, front_end = musicnn.SAMPLE_RATE, musicnn.MusicnnBackend.front_end_version
    elif spec.family == "yamnet":
        model, checksum = _yamnet_model(weights, seed)
        from .. import yamnet

        patch_shape = (yamnet.PATCH_FRAMES, yamnet.N_MELS)
        patch_seconds = yamnet.PATCH_FRAMES * yamnet.HOP_SAMPLES / yamnet.SAMPLE_RATE
        sample_rate, front_end = yamnet.SAMPLE_RATE, yamnet.FRONT_END_VERSION
    else:
        model, checksum = _vggish_model(weights, seed)
        from .. import vggish

        patch_shape = (vggish.PATCH_FRAMES, vggish.N_MELS)
        patch_seconds = vggish.PATCH_FRAMES * vggish.HOP_SAMPLES / vggish.SAMPLE_RATE
        sample_rate, front_end = vggish.SAMPLE_RATE, vggish.FRONT_END_VERSION
    backbone = Backbone(name=name, model=model, blocks=spec.blocks, sample_rate=sample_rate,
                        patch_shape=patch_shape, patch_seconds=patch_seconds, front_end_version=front_end,
                        weights_checksum=checksum)
    unfreeze_top(backbone, unfreeze=0)
    return backbone


def _vggish_model(weights, seed: int):
    """VGGish as one flat graph on (96, 64) patches (its own input has a channel axis), and its checksum."""
    import keras

    from .. import vggish

    if weights == "random":
        network, checksum = vggish.VGGish(seed=seed), f"random-glorot-seed{seed}"
    else:
        path = vggish.converted_weights_path() if weights is None else Path(weights)
        network = vggish.VGGish(weights=path)  # raises WeightsError saying how to convert them
        checksum = vggish.weights_checksum(path)  # what the embedding backend records for the same file
    inputs = keras.Input((vggish.PATCH_FRAMES, vggish.N_MELS), name="log_mel")
    x = keras.layers.Reshape((vggish.PATCH_FRAMES, vggish.N_MELS, 1), name="add_channel")(inputs)
    for layer in network.layers[1:]:  # VGGish is a plain chain
        # A copy of each layer, so that this graph is the layer's first and only call (split_backbone cuts by
        # the public Operation.input, which names a layer's first call); the weights are copied over.
        copy = type(layer).from_config(layer.get_config())
        x = copy(x)
        copy.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name="vggish"), checksum


def _yamnet_model(weights, seed: int):
    """YAMNet cut at its 1024-d embedding (global average pooling; the AudioSet classifier dropped), and the
    checksum the ``yamnet`` embedding backend records (the converted source's SHA-256), so fine-tuning runs
    and embedding caches name the same weights."""
    import keras

    from .. import yamnet

    if weights == "random":
        network, checksum = yamnet.YAMNet(seed=seed), f"random-glorot-seed{seed}"
    else:
        if weights is None:
            path = yamnet.converted_weights_path()
            if not path.is_file() and yamnet.default_tflite_path() is not None:
                yamnet.convert_tflite(yamnet.default_tflite_path())  # once; later runs read the cache
        else:
            path = Path(weights)
        network = yamnet.YAMNet(weights=path)  # raises WeightsError saying how to convert them
        checksum = yamnet.weights_checksum(path)
    output = network.get_layer(BACKBONES["yamnet"].output).output
    return keras.Model(network.input, output, name="yamnet"), checksum


def n_blocks(backbone: Backbone, *, unfreeze: int | str) -> int:
    if unfreeze == "all":
        return len(backbone.blocks)
    if isinstance(unfreeze, bool) or not isinstance(unfreeze, (int, np.integer)) or \
            not 0 <= unfreeze <= len(backbone.blocks):
        raise ParameterError(f"unfreeze={unfreeze!r} must be an integer in [0, {len(backbone.blocks)}] or 'all' "
                             f"({backbone.name} has {len(backbone.blocks)} blocks)")
    return int(unfreeze)


def unfreeze_top(backbone: Backbone, *, unfreeze: int | str) -> list[str]:
    """Make the top ``unfreeze`` blocks trainable and freeze everything else, batch norm included.

    Notebook: 06_fine_tuning.

    Parameters
    ----------
    backbone : Backbone
    unfreeze : int in [0, len(backbone.blocks)] or "all"
        Number of blocks, counted from the top (:data:`BACKBONES`); 0 freezes the whole backbone.

    Returns
    -------
    list of str
        Names of the layers that now train. ``BatchNormalization`` layers never do: a frozen batch-norm
        layer runs in inference mode (moving statistics), which is what fine-tuning on small batches needs.
    """
    count = n_blocks(backbone, unfreeze=unfreeze)
    wanted = {name for block in backbone.blocks[:count] for name in block}
    unknown = wanted - {layer.name for layer in backbone.model.layers}
    if unknown:
        raise GenrelibError(f"{backbone.name}: block layers {sorted(unknown)} missing from the network")
    backbone.model.trainable = True  # a frozen container would hide its layers' own flags
    trained = []
    for layer in backbone.model.layers:
        layer.trainable = layer.name in wanted and type(layer).__name__ != "BatchNormalization"
        if layer.trainable and layer.weights:
            trained.append(layer.name)
    return trained


def block_table(backbone: Backbone) -> pd.DataFrame:
    """The blocks ``unfreeze`` counts, top first: ``block`` (1 = top), ``layers`` that can train (batch-norm
    layers omitted: they stay frozen), ``weights`` those layers hold, and ``trainable`` (their current state).

    Notebook: 06_fine_tuning.
    """
    rows = []
    for number, block in enumerate(backbone.blocks, start=1):
        layers = [backbone.model.get_layer(name) for name in block]
        layers = [layer for layer in layers if type(layer).__name__ != "BatchNormalization"]
        rows.append({"block": number, "layers": ", ".join(layer.name for layer in layers),
                     "weights": sum(layer.count_params() for layer in layers),
                     "trainable": all(layer.trainable for layer in layers)})
    return pd.DataFrame(rows)


def front_end_only(name: str) -> Backbone:
    """A backbone description without its network (``model=None``): enough for :func:`patch_dataset`."""
    spec = BACKBONES[one_of(name, tuple(BACKBONES), "backbone")]
    if spec.family == "vggish":
        from .. import vggish

        return Backbone(name, None, spec.blocks, vggish.SAMPLE_RATE, (vggish.PATCH_FRAMES, vggish.N_MELS),
                         vggish.PATCH_FRAMES * vggish.HOP_SAMPLES / vggish.SAMPLE_RATE, vggish.FRONT_END_VERSION, "")
    if spec.family == "yamnet":
        from .. import yamnet

        return Backbone(name, None, spec.blocks, yamnet.SAMPLE_RATE, (yamnet.PATCH_FRAMES, yamnet.N_MELS),
                         yamnet.PATCH_FRAMES * yamnet.HOP_SAMPLES / yamnet.SAMPLE_RATE, yamnet.FRONT_END_VERSION, "")
    from .. import musicnn

    return Backbone(name, None, spec.blocks, musicnn.SAMPLE_RATE, (musicnn.PATCH_FRAMES, musicnn.N_MELS),
                     musicnn.PATCH_SECONDS, musicnn.MusicnnBackend.front_end_version, "")
