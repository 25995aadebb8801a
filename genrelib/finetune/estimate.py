"""How long a fine-tuning run should take on this machine, and the plan printed before it starts.

Notebook: 06_fine_tuning.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from ..config import Config
from .backbones import Backbone
from ..train import fit_model
from .cache import BOTTOM_BATCH, run_bottom
from .cut import clip_model, input_shapes

__all__ = ["estimate_seconds", "describe_plan"]


def _seconds_per_step(model, batch_size: int, *, n_steps: int = 4) -> float:
    """Wall seconds of one training step of ``model`` on ``batch_size`` clips of zeros.

    The steps run through the package's one training loop (:func:`genrelib.train.fit_model`), once to trace it
    and once timed; ``model`` is a throw-away wrapper, and the weights it shares with the run's layers are put
    back afterwards.
    """
    import keras

    inputs = [np.zeros((n_steps * batch_size, *shape), np.float32) for shape in input_shapes(model)]
    targets = keras.utils.to_categorical(np.zeros(n_steps * batch_size, int), int(model.output.shape[-1]))
    weights = model.get_weights()
    model.compile(optimizer=keras.optimizers.RMSprop(), loss="categorical_crossentropy", jit_compile=False)

    def one_epoch() -> None:
        fit_model(model, inputs if len(inputs) > 1 else inputs[0], targets, epochs=1, batch_size=batch_size,
                  shuffle=False, callbacks=[])

    one_epoch()  # traces the train function
    started = time.perf_counter()
    one_epoch()
    elapsed = time.perf_counter() - started
    model.set_weights(weights)
    return elapsed / n_steps


def estimate_seconds(backbone: Backbone, bottom, top, *, config: Config, table: pd.DataFrame,
                     epochs: tuple[int, int]) -> dict:
    """Seconds each part of a run should take on this machine, from timing one clip and one batch."""
    from .. import audio
    from ..model import build_classifier

    n_front_end, n_bottom = int((~table["patches_cached"]).sum()), int((~table["features_cached"]).sum())
    n_train = int((table["side"] == "train").sum())
    n_patches = max(1, int(round(median_duration(table) / backbone.patch_seconds)))
    sample = table["path"].iloc[0]
    seconds = {"front_end": 0.0, "frozen_layers": 0.0}
    if n_front_end or n_bottom:
        backbone.patches(audio.load(sample, sr=backbone.sample_rate)[: int(2 * backbone.patch_seconds *
                                                                           backbone.sample_rate)])  # first calls
        started = time.perf_counter()
        patches = backbone.patches(audio.load(sample, sr=backbone.sample_rate))  # decoding counts too
        seconds["front_end"] = n_front_end * (time.perf_counter() - started)
        if bottom is not None:
            run_bottom(bottom, patches[:BOTTOM_BATCH + 1])  # traces the predict function: full and short batch
            started = time.perf_counter()
            run_bottom(bottom, patches)
            seconds["frozen_layers"] = n_bottom * (time.perf_counter() - started) * n_patches / len(patches)
    batch_size = min(config.train.batch_size, n_train)
    # Training steps per epoch, plus the validation pass (a forward pass costs about a third of a step).
    steps = -(-n_train // batch_size) + -(-int((table["side"] == "valid").sum()) // batch_size) / 3
    # A throw-away head of the same shape: the real one is built after seeding, from training statistics.
    head = build_classifier(n_patches=n_patches, embedding_dim=backbone.embedding_dim, config=config.model)
    seconds["head_only"] = epochs[0] * steps * _seconds_per_step(head, batch_size)
    if top is None:
        stage_two = head
    else:
        stage_two = clip_model(top, head, n_patches=n_patches, name="timing")
    seconds["fine_tuning"] = epochs[1] * steps * _seconds_per_step(stage_two, batch_size)
    seconds["total"] = sum(seconds.values())
    return seconds


def median_duration(table: pd.DataFrame) -> float:
    from .. import audio

    originals = table.loc[(table["side"] == "train") & (table["method"] == "original"), "path"]
    return float(np.median([audio.info(path)["duration"] for path in originals[:20]]))


def describe_plan(seconds: dict, *, backbone: Backbone, trained: list[str], table: pd.DataFrame, unfreeze) -> str:
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
