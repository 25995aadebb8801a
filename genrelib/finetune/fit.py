"""Training one stage of fine-tuning: compile, fit with a checkpoint per epoch, resume, predict.

Notebook: 06_fine_tuning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import one_of
from ..config import GENRES
from ..errors import DataError
from ..storage import atomic_save_npz
from ..train import build_optimizer
from .cache import predict

#: Training stages, in order; predictions and histories carry these names.
STAGES = ("frozen", "finetuned")

def compile_stage(model, train_config, learning_rate: float) -> None:
    one_of(train_config.loss, ("categorical_crossentropy",), "loss")
    model.compile(optimizer=build_optimizer(train_config, learning_rate=learning_rate), loss=train_config.loss,
                  metrics=["accuracy"], jit_compile=False)


def _take(inputs: list[np.ndarray], rows) -> Any:
    taken = [x[rows] for x in inputs]
    return taken if len(taken) > 1 else taken[0]


def predict_probabilities(model, inputs: list[np.ndarray], *, batch_size: int = 64) -> np.ndarray:
    """Class probabilities [shape=(n, n_classes)] in inference mode (no dropout)."""
    return predict(model, inputs, batch_size=batch_size)[0]


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


def fit_stage(model, *, stage: str, train: tuple, valid: tuple | None, epochs: int, batch_size: int, seed: int,
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
                row["val_loss"], row["val_accuracy"] = _loss_and_accuracy(predict_probabilities(model, valid[0]), valid[1])
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


