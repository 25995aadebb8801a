"""Fine-tuning the embedding network end to end: log-mel patches -> backbone -> clip sequence -> the paper's CNN.

Notebook: 06_fine_tuning. CLI: ``genrelib finetune --backbone musicnn-msd --unfreeze 1``.

The paper fine-tunes VGGish for genre classification. Here every pretrained backbone of genrelib can be
fine-tuned (``musicnn-msd``, ``musicnn-mtt``, ``vgg-msd``, ``vgg-mtt``: the Keras 3 musicnn port, whose
trained weights install offline; ``vggish``: the Keras 3 VGGish with converted official weights;
``yamnet``: the Keras 3 YAMNet, its weights converted from the official TF-Lite file). The
end-to-end model is::

    log-mel patches (n_patches, *patch_shape) -> backbone, one patch at a time -> (n_patches, d)
        -> genrelib.model.build_classifier (the paper's CNN over the clip's patch sequence) -> 10 genres

Schedule (the usual transfer-learning recipe, Keras guide "Transfer learning & fine-tuning"):

1. *head only*: the backbone is frozen; the classifier head trains with the paper's Table 1 (RMSprop,
   lr 1e-3, 30 epochs, batch 32) - this stage alone is the "frozen features" CNN;
2. *fine-tuning*: the top ``unfreeze`` blocks of the backbone (:data:`BACKBONES` lists them, top first)
   train together with the head at a much smaller learning rate (default 1e-5).

Batch normalisation stays in inference mode throughout: every ``BatchNormalization`` layer is frozen
(``trainable=False``, its moving statistics and scale/offset untouched). Passing ``training=False`` when
calling the backbone is not enough in Keras 3.15: a functional model propagates the outer ``training=True``
into nested models, so a trainable batch-norm layer would normalise with batch statistics.

Cost. The front end runs once per clip (log-mel patches cached on disk). A frozen layer computes the same
numbers in every epoch, so the backbone is cut where the trainable part begins (:func:`split_backbone`):
the frozen bottom runs once per clip (its outputs cached on disk, keyed by weights and cut), and only the
trainable top and the head run in each epoch. The arithmetic is that of the end-to-end model; a unit test
checks ``top(bottom(x)) == backbone(x)``. With ``unfreeze=1`` on musicnn an epoch of 280 clips costs 0.2 CPU
seconds instead of 112 (``benchmarks/bench_finetune.py``, 2 cores), after one pass of about 0.35 CPU seconds per
clip through the frozen layers; ``unfreeze="all"`` trains the whole backbone on the patches themselves and is
meant for a GPU.

Augmented copies (``genrelib.augment``) are training items like any other: their patches are cached, and
the leakage guard (``genrelib.augment.assert_no_leakage``) checks the training table before each stage.
Every epoch ends with an atomic checkpoint; an interrupted run resumes from it with the same result (the
batch order of each epoch derives from the seed and the epoch, dropout's generator state is checkpointed).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .checks import one_of, positive_int, positive_number
from .config import GENRES, Config
from .errors import DataError, GenrelibError, ParameterError
from .storage import (atomic_path, atomic_save_npz, atomic_write_csv, atomic_write_json, cache_dir, file_digest,
                      library_versions, output_dir, params_key)
from .train import build_optimizer, check_clip_table, make_splits, package_versions, read_meta, set_determinism

__all__ = [
    "BACKBONES",
    "Backbone",
    "load_backbone",
    "unfreeze_top",
    "block_table",
    "split_backbone",
    "build_end_to_end",
    "patch_dataset",
    "load_patches",
    "item_table",
    "fine_tune",
    "run_protocol",
    "load_finetuned",
    "load_run",
    "summarize",
]

#: Changes whenever this module would compute other patches, frozen-layer outputs or fine-tuned weights for
#: the same inputs; part of every cache key and run key of fine-tuning.
FINETUNE_VERSION = "finetune-1"

#: Training stages, in order; predictions and histories carry these names.
STAGES = ("frozen", "finetuned")
_SIDES = ("train", "valid", "test")
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


# ------------------------------------------------------------------------------------------ backbones

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
            from . import vggish

            return vggish.log_mel_patches(y, sr=self.sample_rate)
        if BACKBONES[self.name].family == "yamnet":
            from . import yamnet

            return yamnet.log_mel_patches(y, sr=self.sample_rate)
        from . import musicnn

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
        from . import musicnn

        network = musicnn.load_model(spec.network)
        model = keras.Model(network.input, network.get_layer(spec.output).output, name=name)
        checksum = musicnn.checkpoint_checksum(musicnn.checkpoint_prefix(spec.network))
        patch_shape, patch_seconds = (musicnn.PATCH_FRAMES, musicnn.N_MELS), musicnn.PATCH_SECONDS
        sample_rate, front_end = musicnn.SAMPLE_RATE, musicnn.MusicnnBackend.front_end_version
    elif spec.family == "yamnet":
        model, checksum = _yamnet_model(weights, seed)
        from . import yamnet

        patch_shape = (yamnet.PATCH_FRAMES, yamnet.N_MELS)
        patch_seconds = yamnet.PATCH_FRAMES * yamnet.HOP_SAMPLES / yamnet.SAMPLE_RATE
        sample_rate, front_end = yamnet.SAMPLE_RATE, yamnet.FRONT_END_VERSION
    else:
        model, checksum = _vggish_model(weights, seed)
        from . import vggish

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

    from . import vggish

    if weights == "random":
        network, checksum = vggish.VGGish(seed=seed), f"random-glorot-seed{seed}"
    else:
        path = vggish.converted_weights_path() if weights is None else Path(weights)
        network = vggish.VGGish(weights=path)  # raises WeightsError saying how to convert them
        checksum = vggish.weights_checksum(path)  # what the embedding backend records for the same file
    inputs = keras.Input((vggish.PATCH_FRAMES, vggish.N_MELS), name="log_mel")
    x = keras.layers.Reshape((vggish.PATCH_FRAMES, vggish.N_MELS, 1), name="add_channel")(inputs)
    for layer in network.layers[1:]:  # VGGish is a plain chain; reusing its layers keeps their weights
        x = layer(x)
    return keras.Model(inputs, x, name="vggish"), checksum


def _yamnet_model(weights, seed: int):
    """YAMNet cut at its 1024-d embedding (global average pooling; the AudioSet classifier dropped), and the
    checksum the ``yamnet`` embedding backend records (the converted source's SHA-256), so fine-tuning runs
    and embedding caches name the same weights."""
    import keras

    from . import yamnet

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
        checksum = yamnet._weights_file_checksum(path)
    output = network.get_layer(BACKBONES["yamnet"].output).output
    return keras.Model(network.input, output, name="yamnet"), checksum


def _n_blocks(backbone: Backbone, unfreeze: int | str) -> int:
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
    count = _n_blocks(backbone, unfreeze)
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


# ------------------------------------------------------------------------------------ cutting the graph

def _inbound_tensors(model, operation) -> list:
    """The tensors ``operation`` consumes in ``model``'s graph (a reused layer has a node per graph)."""
    # Keras keys a graph's nodes as "<id(operation)>_ib-<index>" (keras.src.ops.function.make_node_key).
    nodes = [node for index, node in enumerate(operation._inbound_nodes)
             if f"{id(operation)}_ib-{index}" in model._nodes]
    return list(nodes[0].input_tensors) if nodes else []


def split_backbone(model):
    """Cut a functional model where its trainable part begins: ``model(x) == top(bottom(x))``.

    Notebook: 06_fine_tuning.

    The *top* holds every layer with trainable weights and everything computed from their outputs; the
    *bottom* is the rest. The cut runs through the bottom tensors the top consumes (one tensor for musicnn
    below ``penultimate_dense``; ``front_end``, ``mid_1`` and ``mid_2`` when ``mid_3`` trains, since the top
    concatenates them).

    Parameters
    ----------
    model : keras.Model
        A functional model whose layers each appear once (a backbone).

    Returns
    -------
    bottom : keras.Model or None
        Input -> the cut tensors (a list when several); ``model`` itself when nothing trains; ``None`` when
        no layer with weights lies below the cut (VGGish with every block trainable).
    top : keras.Model or None
        Cut tensors -> output, sharing the layers (and weights) of ``model``; ``None`` when nothing trains.
    """
    import keras

    top = set()
    for operation in model.operations:  # topologically ordered
        parents = {tensor._keras_history.operation for tensor in _inbound_tensors(model, operation)}
        if operation.trainable_weights or parents & top:
            top.add(operation)
    if not top:
        return model, None
    cut, seen = [], set()
    for operation in model.operations:
        if operation in top:
            for tensor in _inbound_tensors(model, operation):
                if tensor._keras_history.operation not in top and id(tensor) not in seen:
                    seen.add(id(tensor))
                    cut.append(tensor)
    if not any(operation.weights for operation in model.operations if operation not in top):
        return None, model  # a bottom of reshapes and padding is not worth caching: train on the patches
    outputs = cut[0] if len(cut) == 1 else cut
    return keras.Model(model.input, outputs, name=f"{model.name}_bottom"), \
        keras.Model(outputs, model.output, name=f"{model.name}_top")


def _input_shapes(model) -> list[tuple[int, ...]]:
    inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    return [tuple(int(size) for size in tensor.shape[1:]) for tensor in inputs]


def _clip_model(encoder, head, *, n_patches: int, name: str):
    """(batch, n_patches, *shape) inputs -> encoder on every patch -> (batch, n_patches, d) -> head."""
    import keras

    shapes = _input_shapes(encoder)
    inputs = [keras.Input((n_patches, *shape), name=f"patches_{i}" if len(shapes) > 1 else "patches")
              for i, shape in enumerate(shapes)]
    # One batch of batch * n_patches patches through the encoder, then back to one sequence per clip.
    flat = [keras.ops.reshape(x, (-1, *shape)) for x, shape in zip(inputs, shapes)]
    embedded = encoder(flat if len(flat) > 1 else flat[0])
    sequence = keras.ops.reshape(embedded, (-1, n_patches, int(embedded.shape[-1])))
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], head(sequence), name=name)


def build_end_to_end(backbone: Backbone, head):
    """The end-to-end classifier: log-mel patches of a clip -> genre probabilities.

    Notebook: 06_fine_tuning.

    Parameters
    ----------
    backbone : Backbone
    head : keras.Model
        :func:`genrelib.model.build_classifier` for ``(n_patches, backbone.embedding_dim)`` sequences.

    Returns
    -------
    keras.Model
        Input [shape=(batch, n_patches, *backbone.patch_shape)] -> [shape=(batch, n_classes)] softmax. Shares
        its layers with ``backbone.model`` and ``head``.
    """
    n_patches, dim = (int(size) for size in head.input.shape[1:])
    if dim != backbone.embedding_dim:
        raise ParameterError(f"head takes {dim}-d embeddings, {backbone.name} gives {backbone.embedding_dim}-d")
    return _clip_model(backbone.model, head, n_patches=n_patches, name=f"{backbone.name}_genre")


# ------------------------------------------------------------------------------------------ items & caches

def item_table(split, index: pd.DataFrame, *, augmented: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every clip one fine-tuning run uses, with its side: the split's tracks plus augmented training copies.

    Notebook: 06_fine_tuning.

    Parameters
    ----------
    split : genrelib.data.Split
    index : pd.DataFrame
        Track index (:func:`genrelib.data.load_gtzan`): ``track_id``, ``genre``, ``path``.
    augmented : pd.DataFrame, optional
        Augmentation manifest of ``split`` (:func:`genrelib.augment.augment_split`); its ``"original"`` rows
        are skipped (the originals come from ``index``).

    Returns
    -------
    pd.DataFrame
        ``item_id``, ``track_id``, ``genre``, ``method``, ``side`` ({"train", "valid", "test"}), ``path``.

    Raises
    ------
    DataError
        A track of the split is missing from the index, or an augmented copy failed.
    LeakageError
        An augmented copy derives from a validation or test track.
    """
    if not {"track_id", "genre", "path"} <= set(index.columns):
        raise ParameterError("index needs 'track_id', 'genre' and 'path' columns (genrelib.data.load_gtzan)")
    by_id = index.set_index("track_id")
    rows = []
    for side in _SIDES:
        for track_id in getattr(split, side):
            if track_id not in by_id.index:
                raise DataError(f"track {track_id} ({side} side of split {split.protocol!r}) is not in the index")
            rows.append({"item_id": track_id, "track_id": track_id, "genre": by_id.at[track_id, "genre"],
                         "method": "original", "side": side, "path": str(by_id.at[track_id, "path"])})
    table = pd.DataFrame(rows)
    if augmented is not None and len(augmented):
        copies = augmented[augmented["method"] != "original"]
        failed = copies[copies["path"].isna()]
        if len(failed):
            raise DataError(f"{len(failed)} augmented clip(s) have no audio, e.g. {failed['item_id'].iloc[0]}: "
                            f"{failed['error'].iloc[0] if 'error' in failed else 'see the manifest'}")
        copies = copies.assign(side="train", path=copies["path"].astype(str))
        table = pd.concat([table, copies[list(table.columns)]], ignore_index=True)
    return check_clip_table(split, table)


def _patches_key(backbone: Backbone, audio_digest: str) -> str:
    from . import audio

    return params_key({"audio": audio_digest, "front_end": backbone.front_end_version,
                       "sample_rate": backbone.sample_rate, "finetune": FINETUNE_VERSION,
                       **audio.decoding_versions()})


def _patches_folder(backbone: Backbone, root: str | os.PathLike | None = None) -> Path:
    """Where one front end's cached log-mel patches live (``<root>/<front_end_version>``)."""
    return (Path(root) if root else cache_dir("patches")) / backbone.front_end_version


def _features_folder(backbone: Backbone, bottom) -> Path:
    """Where the frozen bottom's cached outputs live: keyed by the backbone's weights and the cut."""
    return cache_dir("finetune_features", backbone.name,
                     params_key({"weights": backbone.weights_checksum, "cut": _cut_description(bottom),
                                 "finetune": FINETUNE_VERSION, **library_versions("tensorflow", "keras")}))


def patch_dataset(table: pd.DataFrame, *, backbone: Backbone | str = "musicnn-msd",
                  cache_dir_: str | os.PathLike | None = None, overwrite: bool = False,
                  progress: bool = True) -> pd.DataFrame:
    """Log-mel patches of every clip, computed once and cached on disk.

    Notebook: 06_fine_tuning.

    Parameters
    ----------
    table : pd.DataFrame
        Rows with ``path`` (and ``item_id``): :func:`item_table`, a track index or an augmentation manifest.
    backbone : Backbone or str
        Whose front end (the musicnn networks share one; VGGish has its own).
    cache_dir_ : path, optional
        Cache root, default ``cache_dir("patches")``; one ``<front_end_version>/<key>.npz`` per clip holding
        ``patches`` [shape=(n_patches, *patch_shape)] float32, ``key`` hashing the audio file's sha256, the
        front end and the sample rate.
    overwrite : bool
        Recompute cached clips.
    progress : bool
        A tqdm bar.

    Returns
    -------
    pd.DataFrame
        ``table`` plus ``patches_path`` and ``n_patches``.

    Raises
    ------
    GenrelibError
        After the pass (finished clips stay cached), listing every file that could not be read or is shorter
        than one patch.
    """
    from tqdm.auto import tqdm

    from . import audio

    if "path" not in table.columns:
        raise ParameterError("table needs a 'path' column")
    if isinstance(backbone, str):
        backbone = _front_end_only(backbone)
    folder = _patches_folder(backbone, cache_dir_)
    paths = [Path(p) for p in table["path"]]
    digests = list(table["audio_sha256"]) if "audio_sha256" in table.columns else [None] * len(paths)

    def compute(job: tuple[Path, str | None]) -> tuple[Path | None, int, str | None]:
        path, digest = job
        try:
            target = folder / f"{_patches_key(backbone, digest or file_digest(path))}.npz"
            if target.exists() and not overwrite:
                with np.load(target) as stored:
                    return target, int(stored["patches"].shape[0]), None
            y = audio.load(path, sr=backbone.sample_rate, min_duration=backbone.patch_seconds)
            patches = backbone.patches(y)
            atomic_save_npz(target, patches=patches)
            return target, len(patches), None
        except (GenrelibError, OSError) as exc:
            return None, 0, str(exc) if str(path) in str(exc) else f"{path}: {exc}"  # audio errors name the file

    # Front ends are numpy/librosa code that mostly holds the GIL; one worker overlaps decoding with it.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        results = list(tqdm(pool.map(compute, zip(paths, digests)), total=len(paths), disable=not progress, unit="clip",
                            desc=f"log-mel patches [{backbone.front_end_version}]"))
    failed = [error for _, _, error in results if error]
    if failed:
        raise GenrelibError(f"{len(failed)} of {len(paths)} clips have no patches (the others are cached):\n  "
                            + "\n  ".join(failed))
    result = table.copy()
    result["patches_path"] = [str(target) for target, _, _ in results]
    result["n_patches"] = [count for _, count, _ in results]
    return result


def load_patches(table: pd.DataFrame, *, n_patches: int, pad_mode: str = "repeat") -> np.ndarray:
    """The cached patches of :func:`patch_dataset`'s rows, as the end-to-end model's input.

    Notebook: 06_fine_tuning.

    Parameters
    ----------
    table : pd.DataFrame
        :func:`patch_dataset`'s result (``patches_path``).
    n_patches : int > 0
        Patches per clip the model takes (``model.input.shape[1]``); longer clips keep their central patches,
        shorter ones repeat (``pad_mode``, as :func:`genrelib.model.fit_patches`).

    Returns
    -------
    np.ndarray [shape=(n_clips, n_patches, *patch_shape)], float32
    """
    if "patches_path" not in table.columns:
        raise ParameterError("table needs a 'patches_path' column (from genrelib.finetune.patch_dataset)")
    return _stack(list(table["patches_path"]), ["patches"], n_patches=positive_int(n_patches, "n_patches"),
                  pad_mode=pad_mode)[0]


def _front_end_only(name: str) -> Backbone:
    """A backbone description without its network (``model=None``): enough for :func:`patch_dataset`."""
    spec = BACKBONES[one_of(name, tuple(BACKBONES), "backbone")]
    if spec.family == "vggish":
        from . import vggish

        return Backbone(name, None, spec.blocks, vggish.SAMPLE_RATE, (vggish.PATCH_FRAMES, vggish.N_MELS),
                         vggish.PATCH_FRAMES * vggish.HOP_SAMPLES / vggish.SAMPLE_RATE, vggish.FRONT_END_VERSION, "")
    if spec.family == "yamnet":
        from . import yamnet

        return Backbone(name, None, spec.blocks, yamnet.SAMPLE_RATE, (yamnet.PATCH_FRAMES, yamnet.N_MELS),
                         yamnet.PATCH_FRAMES * yamnet.HOP_SAMPLES / yamnet.SAMPLE_RATE, yamnet.FRONT_END_VERSION, "")
    from . import musicnn

    return Backbone(name, None, spec.blocks, musicnn.SAMPLE_RATE, (musicnn.PATCH_FRAMES, musicnn.N_MELS),
                     musicnn.PATCH_SECONDS, musicnn.MusicnnBackend.front_end_version, "")


def _cut_description(bottom) -> list[str]:
    """Stable names of the cut tensors (producing layer and output index), for cache keys."""
    outputs = bottom.outputs if isinstance(bottom.outputs, (list, tuple)) else [bottom.outputs]
    return [f"{t._keras_history.operation.name}:{t._keras_history.tensor_index}:{tuple(t.shape[1:])}"
            for t in outputs]


#: Patches per forward pass of the frozen bottom (bounds memory; CPU time per patch barely changes).
BOTTOM_BATCH = 8


def _inference(model):
    """``model`` in inference mode as one graph traced once for any batch size (Keras' ``predict_on_batch``
    retraces, and warns, for every new batch size and model)."""
    import tensorflow as tf

    function = getattr(model, "_genrelib_inference", None)
    if function is None:
        signature = [tf.TensorSpec((None, *shape), tf.float32) for shape in _input_shapes(model)]
        function = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0], training=False),
                               input_signature=signature, autograph=False)
        model._genrelib_inference = function
    return function


def _run_bottom(bottom, patches: np.ndarray) -> list[np.ndarray]:
    forward = _inference(bottom)
    chunks = [forward(patches[start:start + BOTTOM_BATCH]) for start in range(0, len(patches), BOTTOM_BATCH)]
    chunks = [chunk if isinstance(chunk, (list, tuple)) else [chunk] for chunk in chunks]
    return [np.concatenate([np.asarray(chunk[i], np.float32) for chunk in chunks]) for i in range(len(chunks[0]))]


def _bottom_features(table: pd.DataFrame, *, backbone: Backbone, bottom, progress: bool) -> list[Path]:
    """Outputs of the frozen bottom for every clip, cached as ``cut_<i>`` arrays; returns their paths."""
    from tqdm.auto import tqdm

    folder = _features_folder(backbone, bottom)
    targets = []
    for patches_path in tqdm(table["patches_path"], disable=not progress, unit="clip",
                             desc=f"frozen layers [{backbone.name}]"):
        target = folder / Path(patches_path).name
        if not target.exists():
            with np.load(patches_path) as stored:
                outputs = _run_bottom(bottom, stored["patches"])
            atomic_save_npz(target, **{f"cut_{i}": array for i, array in enumerate(outputs)})
        targets.append(target)
    return targets


def _fit_length(array: np.ndarray, n_patches: int, pad_mode: str) -> np.ndarray:
    """genrelib.model.fit_patches on any per-patch shape (centre crop, or repeat / zero padding)."""
    from .model import fit_patches

    flat = array.reshape(len(array), -1)
    return fit_patches(flat, n_patches=n_patches, pad_mode=pad_mode).reshape(n_patches, *array.shape[1:])


def _stack(paths: Sequence, keys: Sequence[str], *, n_patches: int, pad_mode: str) -> list[np.ndarray]:
    """One array per key [shape=(n_items, n_patches, ...)] from per-clip .npz files."""
    columns: list[list[np.ndarray]] = [[] for _ in keys]
    for path in paths:
        with np.load(path) as stored:
            for column, key in zip(columns, keys):
                column.append(_fit_length(stored[key], n_patches, pad_mode))
    return [np.stack(column) for column in columns]


def _embed(top, inputs: list[np.ndarray], *, batch_patches: int = 256) -> np.ndarray:
    """``top`` on every patch of every clip: [shape=(n_items, n_patches, d)] (inference mode)."""
    n_items, n_patches = inputs[0].shape[:2]
    flat = [x.reshape(n_items * n_patches, *x.shape[2:]) for x in inputs]
    chunks = []
    for start in range(0, n_items * n_patches, batch_patches):
        chunks.append(np.asarray(_inference(top)(*[x[start:start + batch_patches] for x in flat]), np.float32))
    embedded = np.concatenate(chunks)
    return embedded.reshape(n_items, n_patches, -1)


# ------------------------------------------------------------------------------------------ training

def _compile(model, train_config, learning_rate: float) -> None:
    one_of(train_config.loss, ("categorical_crossentropy",), "loss")
    model.compile(optimizer=build_optimizer(train_config, learning_rate=learning_rate), loss=train_config.loss,
                  metrics=["accuracy"], jit_compile=False)


def _take(inputs: list[np.ndarray], rows) -> Any:
    taken = [x[rows] for x in inputs]
    return taken if len(taken) > 1 else taken[0]


def _predict(model, inputs: list[np.ndarray], *, batch_size: int = 64) -> np.ndarray:
    """Class probabilities [shape=(n, n_classes)] in inference mode (no dropout)."""
    forward = _inference(model)
    return np.concatenate([np.asarray(forward(*[x[start:start + batch_size] for x in inputs]))
                           for start in range(0, len(inputs[0]), batch_size)])


def _loss_and_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Categorical cross-entropy (probabilities clipped at 1e-7, as Keras does) and accuracy."""
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    return float(-np.mean(np.log(picked))), float(np.mean(probabilities.argmax(axis=1) == labels))


def _save_checkpoint(path: Path, model, *, info: dict, best: list[np.ndarray] | None) -> None:
    """Every variable of the training model, the optimizer's state, the best weights so far and ``info``."""
    arrays = {f"variable_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    if not info["complete"]:
        arrays.update({f"optimizer_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.optimizer.variables)})
    if best is not None:
        arrays.update({f"best_{i}": array for i, array in enumerate(best)})
    atomic_save_npz(path, info=np.array(json.dumps(info)), **arrays)


def _restore_checkpoint(path: Path, model) -> tuple[dict, list[np.ndarray] | None]:
    """Load what :func:`_save_checkpoint` wrote into ``model`` (and its optimizer, mid-stage)."""
    try:
        stored = np.load(path)
        info = json.loads(str(stored["info"]))
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: unreadable checkpoint ({exc}); delete it or pass overwrite=True") from exc
    with stored:
        variables = model.variables
        saved = [stored[f"variable_{i}"] for i in range(sum(k.startswith("variable_") for k in stored.files))]
        if len(saved) != len(variables) or any(a.shape != tuple(v.shape) for a, v in zip(saved, variables)):
            raise DataError(f"{path}: checkpoint does not match the model ({len(saved)} arrays for "
                            f"{len(variables)} variables); delete it or pass overwrite=True")
        for variable, array in zip(variables, saved):
            variable.assign(array)
        if not info["complete"]:
            model.optimizer.build(model.trainable_variables)
            for i, variable in enumerate(model.optimizer.variables):
                variable.assign(stored[f"optimizer_{i}"])
        n_best = sum(k.startswith("best_") for k in stored.files)
        best = [stored[f"best_{i}"] for i in range(n_best)] if n_best else None
    return info, best


def _fit_stage(model, *, stage: str, train: tuple, valid: tuple | None, epochs: int, batch_size: int, seed: int,
               select: str, checkpoint: Path, progress: bool) -> dict:
    """Train ``model`` (compiled) for ``epochs``, one atomic checkpoint per epoch; resume from ``checkpoint``.

    The batches of epoch ``e`` are a permutation drawn from ``(seed, stage, e)`` alone, and the checkpoint
    holds every variable (dropout's generator state included) and the optimizer's slots, so a resumed stage
    performs exactly the updates an uninterrupted one would. Returns ``info``: ``history`` (one row per epoch),
    ``best_epoch``; the model ends with the weights ``select`` picks ("best": lowest validation loss).
    """
    import keras
    from tqdm.auto import tqdm

    info = {"stage": stage, "epoch": 0, "history": [], "best_epoch": None, "best_loss": None, "complete": False}
    best = None
    if checkpoint.exists():
        info, best = _restore_checkpoint(checkpoint, model)
        if info["complete"]:
            return info
    x_train, y_train = train
    targets = keras.utils.to_categorical(y_train, len(GENRES))
    n = len(y_train)
    with tqdm(total=epochs, initial=info["epoch"], disable=not progress, unit="epoch", desc=stage, leave=False) as bar:
        for epoch in range(info["epoch"], epochs):
            order = np.random.default_rng([seed, STAGES.index(stage), epoch]).permutation(n)
            totals = np.zeros(2)
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                logs = model.train_on_batch(_take(x_train, rows), targets[rows], return_dict=True)
                totals += len(rows) * np.array([float(logs["loss"]), float(logs["accuracy"])])
            row = {"stage": stage, "epoch": epoch + 1, "loss": totals[0] / n, "accuracy": totals[1] / n}
            if valid is not None:
                row["val_loss"], row["val_accuracy"] = _loss_and_accuracy(_predict(model, valid[0]), valid[1])
                if select == "best" and (info["best_loss"] is None or row["val_loss"] < info["best_loss"]):
                    info["best_loss"], info["best_epoch"] = row["val_loss"], epoch + 1
                    best = [np.asarray(v.numpy()) for v in model.trainable_variables]
            info["history"].append(row)
            info["epoch"] = epoch + 1
            _save_checkpoint(checkpoint, model, info=info, best=best)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k not in ("stage", "epoch")})
    if select == "best" and best is not None:
        for variable, array in zip(model.trainable_variables, best):
            variable.assign(array)
    else:
        info["best_epoch"] = epochs
    info["complete"] = True
    _save_checkpoint(checkpoint, model, info=info, best=None)
    return info


# ------------------------------------------------------------------------------------------ estimate

def _seconds_per_step(model, shapes: list[tuple[int, ...]], batch_size: int) -> float:
    """Wall seconds of one forward + backward pass over ``batch_size`` clips (zeros; weights untouched)."""
    import tensorflow as tf

    inputs = [tf.zeros((batch_size, *shape)) for shape in shapes]
    variables = model.trainable_variables

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            # Inference mode: no dropout, so no random generator advances and a run stays reproducible.
            loss = tf.reduce_sum(model(x if len(x) > 1 else x[0], training=False))
        return tape.gradient(loss, variables) if variables else loss

    step(inputs)  # traces
    started = time.perf_counter()
    step(inputs)
    return time.perf_counter() - started


def _estimate(backbone: Backbone, bottom, top, *, config: Config, table: pd.DataFrame, epochs: tuple[int, int]) -> dict:
    """Seconds each part of a run should take on this machine, from timing one clip and one batch."""
    from . import audio
    from .model import build_classifier

    n_front_end, n_bottom = int((~table["patches_cached"]).sum()), int((~table["features_cached"]).sum())
    n_train = int((table["side"] == "train").sum())
    n_patches = max(1, int(round(_median_duration(table) / backbone.patch_seconds)))
    sample = table["path"].iloc[0]
    seconds = {"front_end": 0.0, "frozen_layers": 0.0}
    if n_front_end or n_bottom:
        backbone.patches(audio.load(sample, sr=backbone.sample_rate)[: int(2 * backbone.patch_seconds *
                                                                           backbone.sample_rate)])  # first calls
        started = time.perf_counter()
        patches = backbone.patches(audio.load(sample, sr=backbone.sample_rate))  # decoding counts too
        seconds["front_end"] = n_front_end * (time.perf_counter() - started)
        if bottom is not None:
            _run_bottom(bottom, patches[:1])  # traces the predict function
            started = time.perf_counter()
            _run_bottom(bottom, patches)
            seconds["frozen_layers"] = n_bottom * (time.perf_counter() - started) * n_patches / len(patches)
    batch_size = min(config.train.batch_size, n_train)
    # Training steps per epoch, plus the validation pass (a forward pass costs about a third of a step).
    steps = -(-n_train // batch_size) + -(-int((table["side"] == "valid").sum()) // batch_size) / 3
    # A throw-away head of the same shape: the real one is built after seeding, from training statistics.
    head = build_classifier(n_patches=n_patches, embedding_dim=backbone.embedding_dim, config=config.model)
    seconds["head_only"] = epochs[0] * steps * _seconds_per_step(head, _input_shapes(head), batch_size)
    if top is None:
        stage_two = head
    else:
        stage_two = _clip_model(top, head, n_patches=n_patches, name="timing")
    seconds["fine_tuning"] = epochs[1] * steps * _seconds_per_step(stage_two, _input_shapes(stage_two), batch_size)
    seconds["total"] = sum(seconds.values())
    return seconds


# ------------------------------------------------------------------------------------------ one run

#: Files a run directory may hold (only these are removed when a run starts afresh).
RUN_FILES = ("meta.json", "config.json", "split.json", "history.csv", "predictions.csv", "checkpoint_frozen.npz",
             "checkpoint_finetuned.npz", "finetuned.weights.h5")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _prepare_run_dir(run_dir: Path, key: str, *, overwrite: bool) -> bool:
    """True when ``run_dir`` already holds this complete run. A run of other settings is never mixed in."""
    meta = read_meta(run_dir)
    if meta is not None and not overwrite:
        if meta.get("key") != key:
            raise ParameterError(f"{run_dir} holds a fine-tuning run of other settings (key {meta.get('key')}, "
                                 f"this one {key}); pass another run_dir or overwrite=True")
        return meta.get("status") == "complete"
    if overwrite or meta is None:
        for name in RUN_FILES:  # a fresh start: no file of an earlier attempt survives beside the new ones
            (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return False


def _with_digests(table: pd.DataFrame, backbone: Backbone, bottom) -> pd.DataFrame:
    """Add each clip's audio sha256 and whether its patches / frozen-layer outputs are cached."""
    table = table.copy()
    table["audio_sha256"] = [file_digest(path) for path in table["path"]]
    patches = [_patches_folder(backbone) / f"{_patches_key(backbone, d)}.npz" for d in table["audio_sha256"]]
    table["patches_cached"] = [p.exists() for p in patches]
    if bottom is None:
        table["features_cached"] = True
    else:
        folder = _features_folder(backbone, bottom)
        table["features_cached"] = [(folder / p.name).exists() for p in patches]
    return table


def _describe(seconds: dict, *, backbone: Backbone, trained: list[str], table: pd.DataFrame, unfreeze) -> str:
    n_weights = int(sum(np.prod(v.shape) for v in backbone.model.weights))
    n_trained = int(sum(np.prod(v.shape) for v in backbone.model.trainable_weights))
    sides = table["side"].value_counts()
    total = seconds["total"]
    total = f"{total / 60:.1f} min" if total >= 60 else f"{total:.0f} s"
    return (f"fine-tune {backbone.name}, unfreeze={unfreeze}: {n_trained:,} of {n_weights:,} backbone weights train "
            f"({', '.join(trained) or 'none: the head alone continues'}); {sides.get('train', 0)} training clips "
            f"({int((table['method'] != 'original').sum())} augmented), {sides.get('valid', 0)} validation, "
            f"{sides.get('test', 0)} test.\nEstimated time on this machine ({os.cpu_count()} CPU cores): "
            f"{total} = front end {seconds['front_end']:.0f} s + frozen layers "
            f"{seconds['frozen_layers']:.0f} s (once per clip, then cached) + head-only stage "
            f"{seconds['head_only']:.0f} s + fine-tuning stage {seconds['fine_tuning']:.0f} s")


def _side_arrays(table: pd.DataFrame, paths: list, keys: list[str], *, n_patches: int, pad_mode: str) -> dict:
    """Inputs and labels per side: ``{side: (list of arrays [shape=(n, n_patches, ...)], labels)}``."""
    arrays = {}
    for side in _SIDES:
        rows = np.flatnonzero((table["side"] == side).to_numpy())
        if len(rows):
            labels = np.array([GENRES.index(g) for g in table["genre"].iloc[rows]], dtype=np.int64)
            arrays[side] = (_stack([paths[i] for i in rows], keys, n_patches=n_patches, pad_mode=pad_mode), labels)
    return arrays


def _prediction_rows(table: pd.DataFrame, probabilities: np.ndarray, stage: str) -> pd.DataFrame:
    frame = table.loc[table["side"].isin(["valid", "test"]), ["item_id", "track_id", "genre", "side"]]
    frame = frame.reset_index(drop=True).assign(stage=stage)
    frame["predicted"] = [GENRES[i] for i in probabilities.argmax(axis=1)]
    frame[[f"p_{g}" for g in GENRES]] = probabilities
    return frame


def fine_tune(split, index: pd.DataFrame, *, augmented: pd.DataFrame | None = None, backbone: str = "musicnn-msd",
              unfreeze: int | str = 1, config: Config = Config(), seed: int | None = None,
              head_epochs: int | None = None, finetune_epochs: int = 10, finetune_learning_rate: float = 1e-5,
              weights: str | os.PathLike | None = None, run_dir: str | os.PathLike | None = None,
              overwrite: bool = False, progress: bool = True, describe: bool | None = None) -> Path:
    """Fine-tune a backbone and the paper's CNN on one split: head only, then the top blocks too.

    Notebook: 06_fine_tuning. CLI: ``genrelib finetune``.

    Parameters
    ----------
    split : genrelib.data.Split
        Tracks per side; validation tracks pick each stage's best epoch, test tracks are only predicted.
    index : pd.DataFrame
        Track index (``track_id``, ``genre``, ``path``).
    augmented : pd.DataFrame, optional
        Augmentation manifest of ``split`` (:func:`genrelib.augment.augment_split`); required when
        ``config.augment_training``.
    backbone : str
        A key of :data:`BACKBONES` (default ``"musicnn-msd"``, whose weights install offline).
    unfreeze : int >= 0 or "all"
        Blocks of the backbone that train in stage 2, counted from the top. 1 (default) fits a CPU: on
        musicnn it is the 200-unit dense layer (301 k of 792 k weights). ``"all"`` fine-tunes everything
        on the log-mel patches themselves: meant for a GPU. 0 lets only the head continue (a control).
    config : Config
        ``model`` builds the head; ``train`` gives optimizer, rho, batch size, stage 1's learning rate and
        epochs (Table 1) and ``checkpoint`` ("best": lowest validation loss, per stage); ``augment_training``.
    seed : int, optional
        Seeds the head's weights, dropout and batch order (default ``config.seed``).
    head_epochs : int > 0, optional
        Stage 1 epochs (default ``config.train.epochs``, 30).
    finetune_epochs : int > 0
        Stage 2 epochs.
    finetune_learning_rate : float > 0
        Stage 2's learning rate, for the unfrozen blocks and the head alike (default 1e-5, 100 x below
        Table 1's, so the pretrained weights move little).
    weights : None, "random" or path
        VGGish only, see :func:`load_backbone`.
    run_dir : path, optional
        Default ``output_dir("runs")/finetune/<backbone>-unfreeze<N>-<key>``. A complete run of the same
        settings is returned as it is; an unfinished one resumes from its last checkpoint; one of other
        settings raises :class:`ParameterError` unless ``overwrite``.
    progress : bool
        Show progress bars.
    describe : bool, optional
        Print the plan with its time estimate before training (default: as ``progress``;
        :func:`run_protocol` prints it for its first run only, since the others share it).

    Returns
    -------
    Path
        ``run_dir`` with ``meta.json`` (settings, accuracies, best epochs, wall and CPU seconds, peak memory),
        ``config.json``, ``split.json``, ``history.csv`` and ``predictions.csv`` (both stages, column
        ``stage``), ``finetuned.weights.h5`` (:func:`load_finetuned`) and the two stage checkpoints.

    Notes
    -----
    Log-mel patches are cached under ``cache_dir("patches")`` and the frozen layers' outputs under
    ``cache_dir("finetune_features")``, so the front end and the frozen part of the network run once per
    clip whatever the number of epochs, folds and seeds. The leakage guard checks the training clips before
    each stage. Checkpoints are written atomically after every epoch.
    """
    seed, epochs, learning_rate, select = _check_schedule(config, seed, head_epochs, finetune_epochs,
                                                          finetune_learning_rate)
    if config.augment_training and augmented is None:
        raise ParameterError("config.augment_training is on but no augmented clips were given; pass augmented=... "
                             "(genrelib.augment.augment_split) or set augment_training=False")
    table = item_table(split, index, augmented=augmented if config.augment_training else None)
    model = load_backbone(backbone, weights=weights)
    trained = unfreeze_top(model, unfreeze=unfreeze)
    bottom, top = split_backbone(model.model)
    table = _with_digests(table, model, bottom)
    settings = {"backbone": backbone, "weights": model.weights_checksum, "unfreeze": _n_blocks(model, unfreeze),
                "config": config.keyed_settings(), "seed": seed,
                "epochs": epochs, "finetune_learning_rate": learning_rate, "split": dataclasses.asdict(split),
                "items": sorted(zip(table["item_id"], table["audio_sha256"])),
                "code": {"finetune": FINETUNE_VERSION, **package_versions()}}
    key = params_key(settings)
    run_dir = Path(run_dir) if run_dir is not None else \
        output_dir("runs") / "finetune" / f"{backbone}-unfreeze{settings['unfreeze']}-{key[:8]}"
    if _prepare_run_dir(run_dir, key, overwrite=overwrite):
        return run_dir
    started, cpu_started = time.perf_counter(), time.process_time()
    seconds = _estimate(model, bottom, top, config=config, table=table, epochs=epochs)
    if progress if describe is None else describe:
        print(_describe(seconds, backbone=model, trained=trained, table=table, unfreeze=unfreeze), flush=True)
    meta = {"status": "running", "kind": "finetune", "key": key, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "backbone": backbone,
            "weights_checksum": model.weights_checksum, "weights": None if weights is None else str(weights),
            "unfreeze": settings["unfreeze"], "trained_layers": trained, "seed": seed, "protocol": split.protocol,
            "split_seed": split.seed, "fold": split.fold, "head_epochs": epochs[0], "finetune_epochs": epochs[1],
            "learning_rates": [config.train.learning_rate, learning_rate],
            "clips": table["side"].value_counts().to_dict(),
            "augmented_clips": int((table["method"] != "original").sum()),
            "estimate_seconds": {k: round(v, 1) for k, v in seconds.items()}, "versions": package_versions(),
            "host": platform.node(), "cpu_count": os.cpu_count()}
    config.to_json(run_dir / "config.json")
    split.to_json(run_dir / "split.json")
    atomic_write_json(run_dir / "meta.json", meta)
    outcome = _train_stages(table, model, bottom, top, config=config, seed=seed, epochs=epochs,
                            learning_rate=learning_rate, select=select, split=split, run_dir=run_dir,
                            progress=progress)
    # Times and memory of this process (a resumed run counts from its restart).
    meta.update(outcome, status="complete", wall_seconds=round(time.perf_counter() - started, 1),
                cpu_seconds=round(time.process_time() - cpu_started, 1), peak_rss_mb=round(_peak_rss_mb()))
    atomic_write_json(run_dir / "meta.json", meta)
    return run_dir


def _check_schedule(config: Config, seed, head_epochs, finetune_epochs, finetune_learning_rate) -> tuple:
    """(seed, (stage 1 epochs, stage 2 epochs), stage 2 learning rate, checkpoint choice), checked."""
    seed = config.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ParameterError(f"seed={seed!r} must be an integer")
    epochs = (positive_int(config.train.epochs if head_epochs is None else head_epochs, "head_epochs"),
              positive_int(finetune_epochs, "finetune_epochs"))
    learning_rate = positive_number(finetune_learning_rate, "finetune_learning_rate")
    positive_int(config.train.batch_size, "batch_size")
    select = one_of(getattr(config.train, "checkpoint", "best"), ("best", "last"), "checkpoint")
    return int(seed), epochs, learning_rate, select


def _median_duration(table: pd.DataFrame) -> float:
    from . import audio

    originals = table.loc[(table["side"] == "train") & (table["method"] == "original"), "path"]
    return float(np.median([audio.info(path)["duration"] for path in originals[:20]]))


def _guard(split, table: pd.DataFrame) -> None:
    """The leakage guard on exactly the clips that reach the next fit."""
    from .augment import assert_no_leakage

    assert_no_leakage(split, table[table["side"] == "train"])


def _train_stages(table: pd.DataFrame, backbone: Backbone, bottom, top, *, config: Config, seed: int,
                  epochs: tuple[int, int], learning_rate: float, select: str, split, run_dir: Path,
                  progress: bool) -> dict:
    """Caches, then stage 1 (head on frozen embeddings), then stage 2 (top blocks + head); writes the results."""
    import keras

    from .model import build_classifier

    clock = time.perf_counter()
    table = patch_dataset(table, backbone=backbone, progress=progress)
    if bottom is None:
        paths, keys = list(table["patches_path"]), ["patches"]
    else:
        paths = _bottom_features(table, backbone=backbone, bottom=bottom, progress=progress)
        keys = [f"cut_{i}" for i in range(len(_cut_description(bottom)))]
    originals = table[(table["side"] == "train") & (table["method"] == "original")]
    n_patches = int(np.median(originals["n_patches"]))
    data = _side_arrays(table, paths, keys, n_patches=n_patches, pad_mode=config.model.pad_mode)
    timing = {"prepare_seconds": round(time.perf_counter() - clock, 1)}
    # Stage 1 input: what the frozen backbone makes of each clip, computed once (top(bottom(x)) == backbone(x)).
    embedded = {side: ([_embed(top, x) if top is not None else x[0]], y) for side, (x, y) in data.items()}
    evaluated = [side for side in ("valid", "test") if side in data]  # item_table lists valid before test
    train_batch = config.train.batch_size

    def run_stage(model, stage: str, inputs: dict, n_epochs: int, rate: float) -> tuple[dict, np.ndarray]:
        _guard(split, table)
        _compile(model, config.train, rate)
        clock = time.perf_counter()
        info = _fit_stage(model, stage=stage, train=inputs["train"], valid=inputs.get("valid"), epochs=n_epochs,
                          batch_size=train_batch, seed=seed, select=select,
                          checkpoint=run_dir / f"checkpoint_{stage}.npz", progress=progress)
        timing[f"{stage}_seconds"] = round(time.perf_counter() - clock, 1)
        probabilities = np.concatenate([_predict(model, inputs[side][0]) for side in evaluated])
        return info, probabilities

    set_determinism(seed)
    head = build_classifier(n_patches=n_patches, embedding_dim=backbone.embedding_dim, config=config.model,
                            normalization_data=embedded["train"][0][0])
    # Each stage compiles its own wrapper, so the head itself carries no optimizer into the saved weights.
    head_only = keras.Model(head.inputs, head.outputs, name="head_only")
    frozen, frozen_probabilities = run_stage(head_only, "frozen", embedded, epochs[0], config.train.learning_rate)
    predictions = _prediction_rows(table, frozen_probabilities, "frozen")
    stage_two = keras.Model(head.inputs, head.outputs, name="head_continued") if top is None else \
        _clip_model(top, head, n_patches=n_patches, name="finetune")
    pretrained = {layer.name: [np.array(w.numpy()) for w in layer.trainable_weights]
                  for layer in backbone.model.layers if layer.trainable_weights}
    finetuned, probabilities = run_stage(stage_two, "finetuned", embedded if top is None else data, epochs[1],
                                         learning_rate)
    predictions = pd.concat([predictions, _prediction_rows(table, probabilities, "finetuned")], ignore_index=True)
    atomic_write_csv(run_dir / "predictions.csv", predictions)
    history = pd.DataFrame(frozen["history"] + finetuned["history"])
    atomic_write_csv(run_dir / "history.csv", history)
    with atomic_path(run_dir / "finetuned.weights.h5") as tmp:
        build_end_to_end(backbone, head).save_weights(tmp)
    test = predictions[predictions["side"] == "test"]
    accuracy = {stage: float((rows["predicted"] == rows["genre"]).mean()) if len(rows) else None
                for stage, rows in test.groupby("stage")}
    return {"n_patches": n_patches, "test_accuracy": accuracy, "timing": timing,
            "best_epoch": {"frozen": frozen["best_epoch"], "finetuned": finetuned["best_epoch"]},
            "weight_change": {name: _relative_change(before, backbone.model.get_layer(name).trainable_weights)
                              for name, before in pretrained.items()}}


def _relative_change(before: list[np.ndarray], after) -> float:
    """How far fine-tuning moved a layer: ||w - w_pretrained|| / ||w_pretrained|| over all its weights."""
    difference = sum(float(np.sum((np.asarray(w.numpy()) - b) ** 2)) for b, w in zip(before, after))
    return float(np.sqrt(difference / sum(float(np.sum(b ** 2)) for b in before)))


# ------------------------------------------------------------------------------------------ protocols

def run_protocol(index: pd.DataFrame, *, backbone: str = "musicnn-msd", unfreeze: int | str = 1,
                 config: Config = Config(), head_epochs: int | None = None, finetune_epochs: int = 10,
                 finetune_learning_rate: float = 1e-5, weights: str | os.PathLike | None = None,
                 runs_dir: str | os.PathLike | None = None, overwrite: bool = False,
                 progress: bool = True, max_runs: int | None = None) -> list[Path]:
    """:func:`fine_tune` on every split of ``config.protocol`` for ``config.train.n_seeds`` seeds.

    Notebook: 06_fine_tuning. CLI: ``genrelib finetune``.

    The splits are :func:`genrelib.train.make_splits`' (the classifier's, so frozen and fine-tuned runs
    share folds and seeds with ``genrelib train``); augmented copies are drawn with ``config.seed`` for
    every split, as the pipeline does, so each track's copies are made and cached once.

    ``max_runs`` runs only the first ``max_runs`` (seed, split) pairs, in order (seed 0's folds first): a subset
    that fits the time at hand. The group folder does not depend on it, so a later call with more runs (or
    none) reuses the finished ones and adds the rest.

    Returns
    -------
    list of Path
        Run directories ``<runs_dir>/finetune-<protocol>-<backbone>-unfreeze<N>-<aug|noaug>-<key>/seed<S>-fold<F>``
        (default ``runs_dir``: ``output_dir("runs")``; ``key`` hashes the other settings, so a change starts a
        new folder and the same settings resume); :func:`summarize` tabulates them.
    """
    n_seeds = positive_int(config.validate().train.n_seeds, "n_seeds")
    jobs = [(seed, split) for seed in range(config.seed, config.seed + n_seeds)
            for split in make_splits(index, protocol=config.protocol, seed=seed, config=config)]
    if max_runs is not None:
        jobs = jobs[:positive_int(max_runs, "max_runs")]
    settings = {"config": config.keyed_settings(), "weights": weights,
                "epochs": [head_epochs, finetune_epochs], "finetune_learning_rate": finetune_learning_rate,
                "code": {"finetune": FINETUNE_VERSION, **package_versions()}}
    if config.augment_training:
        from .augment import code_versions

        settings["augmentation"] = {"seed": int(config.seed), **code_versions()}
    group = Path(runs_dir or output_dir("runs")) / (f"finetune-{config.protocol}-{backbone}-unfreeze{unfreeze}-"
                                                    f"{'aug' if config.augment_training else 'noaug'}-"
                                                    f"{params_key(settings, length=8)}")
    if progress:
        print(f"{len(jobs)} run(s): protocol {config.protocol}, seeds {config.seed}..{config.seed + n_seeds - 1}, "
              f"into {group}", flush=True)
    run_dirs, described = [], False
    for seed, split in jobs:
        run_dir = group / f"seed{seed}-fold{split.fold or 0}"
        # The plan is the same for every run of the group: print it once, before the first run that trains.
        describe = progress and not described and (read_meta(run_dir) or {}).get("status") != "complete"
        described = described or describe
        augmented = None
        if config.augment_training:
            from .augment import augment_split

            augmented = augment_split(index, split, config=config.augment, seed=config.seed, progress=progress)
        run_dirs.append(fine_tune(split, index, augmented=augmented, backbone=backbone, unfreeze=unfreeze,
                                  config=config, seed=seed, head_epochs=head_epochs, finetune_epochs=finetune_epochs,
                                  finetune_learning_rate=finetune_learning_rate, weights=weights,
                                  run_dir=run_dir, overwrite=overwrite, progress=progress, describe=describe))
    return run_dirs


def load_run(run_dir: str | os.PathLike) -> dict:
    """A complete fine-tuning run: ``meta`` (dict), ``config`` (Config), ``split`` (Split), ``history`` and
    ``predictions`` (DataFrames, column ``stage``) and ``run_dir``. :class:`DataError` when incomplete."""
    from .data import Split

    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    if meta is None or meta.get("status") != "complete":
        raise DataError(f"{run_dir}: not a complete fine-tuning run (no meta.json with status 'complete'); "
                        f"run genrelib.finetune.fine_tune or `genrelib finetune` (it resumes)")
    return {"run_dir": run_dir, "meta": meta, "config": Config.from_json(run_dir / "config.json"),
            "split": Split.from_json(run_dir / "split.json"), "history": pd.read_csv(run_dir / "history.csv"),
            "predictions": pd.read_csv(run_dir / "predictions.csv")}


def summarize(run_dirs: Sequence[str | os.PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test accuracy of each run before and after fine-tuning, and their mean and spread.

    Notebook: 06_fine_tuning.

    Returns
    -------
    runs : pd.DataFrame
        One row per run: ``seed``, ``fold``, ``n_test``, ``frozen`` and ``finetuned`` test accuracy,
        ``difference`` (finetuned - frozen, same clips), ``best_epoch_frozen``, ``best_epoch_finetuned``,
        ``weight_change`` (the largest relative change ``||w - w_pretrained|| / ||w_pretrained||`` of a
        fine-tuned backbone layer; 0 when only the head trained).
    table : pd.DataFrame
        Rows ``frozen``, ``finetuned``, ``difference``: ``mean``, ``std`` (over runs, ddof=0, as
        :mod:`genrelib.baselines`), ``min``, ``max``, ``n_runs``; ``table.attrs["protocol"]`` says what they
        were computed on (protocol, backbone, unfreeze, epochs, learning rates, augmentation).
    """
    if not run_dirs:
        raise ParameterError("run_dirs is empty: nothing to summarize")
    rows = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        meta, test = run["meta"], run["predictions"][run["predictions"]["side"] == "test"]
        accuracy = {stage: float((part["predicted"] == part["genre"]).mean())
                    for stage, part in test.groupby("stage")}
        rows.append({"seed": meta["seed"], "fold": meta["fold"], "n_test": int((test["stage"] == "frozen").sum()),
                     "frozen": accuracy["frozen"], "finetuned": accuracy["finetuned"],
                     "difference": accuracy["finetuned"] - accuracy["frozen"],
                     "best_epoch_frozen": meta["best_epoch"]["frozen"],
                     "best_epoch_finetuned": meta["best_epoch"]["finetuned"],
                     "weight_change": max(meta["weight_change"].values(), default=0.0)})
    runs = pd.DataFrame(rows)
    columns = ["frozen", "finetuned", "difference"]
    table = pd.DataFrame({"mean": runs[columns].mean(), "std": runs[columns].std(ddof=0),
                          "min": runs[columns].min(), "max": runs[columns].max(), "n_runs": len(runs)})
    first = load_run(run_dirs[0])["meta"]
    trained = ", ".join(first["trained_layers"]) or "head only"
    table.attrs["protocol"] = (f"{first['protocol']} x seeds {sorted(set(runs['seed']))}, {len(runs)} runs; backbone "
                               f"{first['backbone']}, unfreeze {first['unfreeze']} ({trained}); "
                               f"stage 1 {first['head_epochs']} epochs at lr {first['learning_rates'][0]}, stage 2 "
                               f"{first['finetune_epochs']} epochs at lr {first['learning_rates'][1]}; "
                               f"{first['augmented_clips']} augmented training clips per run")
    return runs, table


def load_finetuned(run_dir: str | os.PathLike):
    """The fine-tuned end-to-end model of a run, and its backbone (for :meth:`Backbone.patches`).

    Notebook: 06_fine_tuning.

    Returns
    -------
    model : keras.Model
        Log-mel patches [shape=(batch, n_patches, *patch_shape)] -> genre probabilities [shape=(batch, 10)].
    backbone : Backbone
    """
    from .model import build_classifier

    run = load_run(run_dir)
    meta = run["meta"]
    backbone = load_backbone(meta["backbone"], weights=meta.get("weights"))
    if backbone.weights_checksum != meta["weights_checksum"]:
        raise DataError(f"{run_dir}: fine-tuned from weights {meta['weights_checksum'][:16]}..., but "
                        f"{meta['backbone']} now loads {backbone.weights_checksum[:16]}...")
    head = build_classifier(n_patches=meta["n_patches"], embedding_dim=backbone.embedding_dim,
                            config=run["config"].model)
    model = build_end_to_end(backbone, head)
    model.load_weights(Path(run_dir) / "finetuned.weights.h5")
    return model, backbone
