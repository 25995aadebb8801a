"""Cutting a backbone where its trainable part begins, and the clip-level models built on it.

Notebook: 06_fine_tuning.

A frozen layer computes the same numbers in every epoch, so the backbone is cut where the trainable part
begins (:func:`split_backbone`): the frozen bottom runs once per clip (its outputs cached on disk) and only the
trainable top and the head run in each epoch. The arithmetic is that of the end-to-end model:
``top(bottom(x)) == backbone(x)``.
"""

from __future__ import annotations

from typing import Any

from ..errors import GenrelibError, ParameterError
from .backbones import Backbone

__all__ = ["split_backbone", "clip_model", "build_end_to_end"]


def _producers(model) -> dict[int, tuple[Any, int]]:
    """``id(tensor) -> (operation, index)``: which operation of ``model`` outputs each tensor of its graph, and
    where among that operation's outputs."""
    import keras

    return {id(tensor): (operation, index) for operation in model.operations
            for index, tensor in enumerate(keras.tree.flatten(operation.output))}


def _consumed(model, operation, producers: dict) -> list:
    """The tensors ``operation`` consumes in ``model``'s graph.

    ``Operation.input`` names the tensors of an operation's first call, so each layer must be called once, in
    this graph (:func:`genrelib.finetune.load_backbone` builds every backbone so); a layer first called in
    another graph is refused rather than cut in the wrong place.
    """
    import keras

    if isinstance(operation, keras.layers.InputLayer):
        return []
    tensors = keras.tree.flatten(operation.input)
    if any(id(tensor) not in producers for tensor in tensors):
        raise GenrelibError(f"{model.name}: layer {operation.name!r} was first called in another graph; "
                            f"split_backbone needs a model whose layers are each called once, in it")
    return tensors


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

    producers = _producers(model)
    top = set()
    for operation in model.operations:  # topologically ordered
        parents = {producers[id(tensor)][0] for tensor in _consumed(model, operation, producers)}
        if operation.trainable_weights or parents & top:
            top.add(operation)
    if not top:
        return model, None
    cut, seen = [], set()
    for operation in model.operations:
        if operation in top:
            for tensor in _consumed(model, operation, producers):
                if producers[id(tensor)][0] not in top and id(tensor) not in seen:
                    seen.add(id(tensor))
                    cut.append(tensor)
    if not any(operation.weights for operation in model.operations if operation not in top):
        return None, model  # a bottom of reshapes and padding is not worth caching: train on the patches
    outputs = cut[0] if len(cut) == 1 else cut
    return keras.Model(model.input, outputs, name=f"{model.name}_bottom"), \
        keras.Model(outputs, model.output, name=f"{model.name}_top")


def input_shapes(model) -> list[tuple[int, ...]]:
    inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    return [tuple(int(size) for size in tensor.shape[1:]) for tensor in inputs]


def clip_model(encoder, head, *, n_patches: int, name: str):
    """A clip-level model: ``encoder`` on every patch of a clip, then ``head`` on the clip's sequence.

    Notebook: 06_fine_tuning.

    Parameters
    ----------
    encoder : keras.Model
        One patch (one array per encoder input) [shape=(batch, *shape)] -> its embedding [shape=(batch, d)]: a
        backbone, or the top of :func:`split_backbone`.
    head : keras.Model
        [shape=(batch, n_patches, d)] -> genre probabilities [shape=(batch, n_classes)].
    n_patches : int > 0
        Patches per clip.
    name : str
        The model's name.

    Returns
    -------
    keras.Model
        [shape=(batch, n_patches, *shape)] per encoder input -> [shape=(batch, n_classes)]; shares the layers
        (and weights) of ``encoder`` and ``head``.
    """
    import keras

    shapes = input_shapes(encoder)
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
    return clip_model(backbone.model, head, n_patches=n_patches, name=f"{backbone.name}_genre")


def cut_description(bottom) -> list[str]:
    """Stable names of the cut tensors (producing layer and output index), for cache keys."""
    import keras

    producers = _producers(bottom)
    return [f"{producers[id(t)][0].name}:{producers[id(t)][1]}:{tuple(t.shape[1:])}"
            for t in keras.tree.flatten(bottom.outputs)]
