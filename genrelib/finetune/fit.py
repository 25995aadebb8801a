"""Training one stage of fine-tuning through genrelib's one fit path, :func:`genrelib.train.fit_model`.

Notebook: 06_fine_tuning.

A stage is one ``Model.fit`` with Keras' callbacks: ``ModelCheckpoint(save_best_only=True)`` keeps the epoch of
lowest validation loss on disk, ``BackupAndRestore`` saves the weights and the optimizer's slots after every epoch
and resumes an interrupted fit from them, and a recorder writes the epochs' history. Everything a stage writes
lives in its own folder of the run directory (:func:`stage_folder`).

Resume equals an uninterrupted run: the batches of epoch ``e`` are a permutation drawn from ``(seed, stage, e)``
alone, and dropout's random generators are reseeded from the same triple when the epoch begins, so each epoch
performs the same updates whether or not the process restarted before it. ``EarlyStopping(restore_best_weights=
True)`` does not apply: a stage runs a fixed number of epochs, and its best weights live in memory, which an
interruption loses; the best checkpoint on disk is loaded instead when the stage ends.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..checks import one_of
from ..storage import atomic_path, atomic_write_csv
from ..train import build_optimizer, fit_model
from .cache import predict

__all__ = ["STAGES", "FIT_VERSION", "compile_stage", "predict_probabilities", "stage_folder", "stage_callbacks",
           "fit_stage"]

#: Training stages, in order; predictions and histories carry these names.
STAGES = ("frozen", "finetuned")
#: Changes whenever a stage would train to other weights from the same inputs and seed (batch order, dropout
#: seeding, the fit loop); part of every fine-tuning run key. The hand-written loop before ``Model.fit`` had none.
FIT_VERSION = "keras-fit-1"


def compile_stage(model, *, train_config, learning_rate: float) -> None:
    """Compile ``model`` with the configuration's optimizer (Table 1) at ``learning_rate`` and its loss."""
    one_of(train_config.loss, ("categorical_crossentropy",), "loss")
    model.compile(optimizer=build_optimizer(train_config, learning_rate=learning_rate), loss=train_config.loss,
                  metrics=["accuracy"], jit_compile=False)


def predict_probabilities(model, inputs: list[np.ndarray], *, batch_size: int = 64) -> np.ndarray:
    """Class probabilities [shape=(n, n_classes)] in inference mode (no dropout)."""
    return predict(model, inputs, batch_size=batch_size)[0]


def stage_folder(run_dir: Path, *, stage: str) -> Path:
    """Where one stage keeps its files: ``history.csv`` and ``final.weights.h5`` (the weights the stage ends with,
    layers only); while it trains also ``best.weights.h5`` (ModelCheckpoint) and ``backup/`` (BackupAndRestore)."""
    return Path(run_dir) / one_of(stage, STAGES, "stage")


def _epoch_batches(inputs: list[np.ndarray], targets: np.ndarray, *, batch_size: int, seed: int, stage: str):
    """The training batches as a Keras ``PyDataset`` whose order follows its ``epoch`` attribute."""
    import keras

    class EpochBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self._orders: dict[int, np.ndarray] = {}

        def __len__(self) -> int:
            return -(-len(targets) // batch_size)

        def __getitem__(self, index: int):
            if self.epoch not in self._orders:
                generator = np.random.default_rng([seed, STAGES.index(stage), self.epoch])
                self._orders = {self.epoch: generator.permutation(len(targets))}
            rows = self._orders[self.epoch][index * batch_size:(index + 1) * batch_size]
            taken = [x[rows] for x in inputs]
            return (taken if len(taken) > 1 else taken[0]), targets[rows]

    return EpochBatches()


def _reseed_dropout(model, *, seed: int, stage: str, epoch: int) -> None:
    """Set every random generator of ``model`` to a state drawn from ``(seed, stage, epoch)``.

    ``Model.variables`` is ``Model.weights`` plus the generators' states (Keras documents it so); the states are
    not in a weights file, so they are set afresh each epoch rather than restored.
    """
    weights = {id(variable) for variable in model.weights}
    generators = [variable for variable in model.variables if id(variable) not in weights]
    for number, variable in enumerate(generators):
        state = np.zeros(tuple(variable.shape), dtype=variable.dtype)
        state.flat[0] = np.random.default_rng([seed, STAGES.index(stage), epoch, number]).integers(2 ** 31)
        variable.assign(state)


def _recorder(rows: list[dict], *, batches, stage: str, seed: int, path: Path, epochs: int, progress: bool):
    """A callback that sets each epoch's batch order and dropout seeds, and appends the epoch's row to ``rows``
    and to ``path`` (atomically) when it ends."""
    import keras
    from tqdm.auto import tqdm

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs, disable=not progress, unit="epoch", desc=stage, leave=False)

        def on_epoch_begin(self, epoch, logs=None):
            if self.bar.n == 0 and epoch:  # a resumed fit starts after the epoch of its backup
                self.bar.update(epoch)
            del rows[epoch:]  # an epoch recorded after that backup is done again, to the same numbers
            batches.epoch = epoch
            _reseed_dropout(self.model, seed=seed, stage=stage, epoch=epoch)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            keys = [key for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in logs]
            rows.append({"stage": stage, "epoch": epoch + 1, **{key: float(logs[key]) for key in keys}})
            atomic_write_csv(path, pd.DataFrame(rows))
            self.bar.update(1)
            self.bar.set_postfix({key: f"{rows[-1][key]:.3f}" for key in keys})

        def on_train_end(self, logs=None):
            self.bar.close()

    return Recorder()


def stage_callbacks(*, folder: Path, rows: list[dict], batches, stage: str, seed: int, epochs: int,
                    keep_best: bool, progress: bool) -> list:
    """The callbacks of one stage's fit, in the order their ``on_epoch_end`` must run.

    The best checkpoint is written before the epoch's row, and the row before the backup: whatever an
    interruption cuts short, the epochs a resumed fit repeats reproduce what was written.
    """
    import keras

    callbacks = []
    if keep_best:
        # Lowest validation loss so far, a resumed fit included (a new callback would forget it).
        best = min((row["val_loss"] for row in rows if np.isfinite(row["val_loss"])), default=None)
        callbacks.append(keras.callbacks.ModelCheckpoint(folder / "best.weights.h5", monitor="val_loss", mode="min",
                                                         save_best_only=True, save_weights_only=True,
                                                         initial_value_threshold=best))
    callbacks.append(_recorder(rows, batches=batches, stage=stage, seed=seed, path=folder / "history.csv",
                               epochs=epochs, progress=progress))
    # Kept after the fit (delete_checkpoint=False) until final.weights.h5 is written: the stage then resumes
    # from its last epoch, not from the start.
    callbacks.append(keras.callbacks.BackupAndRestore(folder / "backup", double_checkpoint=True,
                                                      delete_checkpoint=False))
    return callbacks


def _layers_only(model):
    """An uncompiled model on ``model``'s layers: its weights file holds the layers' weights, no optimizer slots."""
    import keras

    return keras.Model(model.inputs, model.outputs, name=f"{model.name}_layers")


def _read_rows(path: Path) -> list[dict]:
    return pd.read_csv(path).to_dict("records") if path.exists() else []


def fit_stage(model, *, stage: str, train: tuple, valid: tuple | None, epochs: int, batch_size: int, seed: int,
              select: str, folder: Path, progress: bool) -> dict[str, Any]:
    """Train ``model`` (compiled) for ``epochs``, resuming from what ``folder`` holds.

    Parameters
    ----------
    train, valid : tuple (list of np.ndarray [shape=(n, ...)], np.ndarray [shape=(n,)] int)
        Inputs (one array per model input) and genre indices; ``valid`` may be None.
    select : {"best", "last"}
        The weights the model ends with: lowest validation loss (first such epoch), or the last epoch.
    folder : Path
        :func:`stage_folder`. A stage whose ``final.weights.h5`` exists loads it and trains no more.

    Returns
    -------
    dict
        ``history`` (one dict per epoch: ``stage``, ``epoch`` from 1, ``loss``, ``accuracy`` and, with
        validation clips, ``val_loss``, ``val_accuracy``) and ``best_epoch``.
    """
    import keras

    final, rows = folder / "final.weights.h5", _read_rows(folder / "history.csv")
    keep_best = select == "best" and valid is not None
    if not final.exists():
        folder.mkdir(parents=True, exist_ok=True)
        x_train, y_train = train
        n_classes = int(model.outputs[0].shape[-1])  # GTZAN's ten genres, or a collection's labels
        batches = _epoch_batches(x_train, keras.utils.to_categorical(y_train, n_classes), batch_size=batch_size,
                                 seed=seed, stage=stage)
        validation = None if valid is None else \
            (valid[0] if len(valid[0]) > 1 else valid[0][0], keras.utils.to_categorical(valid[1], n_classes))
        fit_model(model, batches, validation_data=validation, epochs=epochs, shuffle=False,
                  callbacks=stage_callbacks(folder=folder, rows=rows, batches=batches, stage=stage, seed=seed,
                                            epochs=epochs, keep_best=keep_best, progress=progress))
        if keep_best and (folder / "best.weights.h5").exists():
            model.load_weights(folder / "best.weights.h5")  # the fit built the optimizer: its slots load too
        with atomic_path(final) as tmp:
            _layers_only(model).save_weights(tmp)
        # What only an unfinished stage needs; the weights it ends with are in final.weights.h5.
        (folder / "best.weights.h5").unlink(missing_ok=True)
        shutil.rmtree(folder / "backup", ignore_errors=True)
    else:
        _layers_only(model).load_weights(final)
    losses = [row["val_loss"] for row in rows] if keep_best else []
    best_epoch = int(np.nanargmin(losses)) + 1 if np.isfinite(losses).any() else epochs
    return {"history": rows, "best_epoch": best_epoch}
