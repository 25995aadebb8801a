"""Training the paper's CNN: Table 1 defaults, deterministic seeds, protocols, run directories.

Notebook: 04_cnn_training.

Three levels, arrays first:

- :func:`fit_classifier` - arrays in, a trained Keras model and its history out (Table 1 from
  :class:`genrelib.config.TrainConfig`; deterministic for a seed).
- :func:`train_split` - one split of embedded tracks (plus augmented copies of its training tracks) into a
  *run directory*: ``config.json``, ``split.json``, ``meta.json`` (seed, backend, data checksum, package
  versions, git commit), ``history.csv``, ``best.keras`` / ``last.keras`` and ``predictions.csv``
  (validation and test tracks, with the probability of every genre).
- :func:`run_protocol` - every split and seed of a protocol (``paper``, ``fault_filtered``, ``kfold``).

All splits are by track, made before augmentation; augmented copies come only from training tracks, and
the leakage guard checks every clip that reaches :meth:`keras.Model.fit` or a prediction before training.
A run directory whose ``meta.json`` says ``"status": "complete"`` is reused, so an interrupted protocol
resumes with the next unfinished run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from . import data as gdata
from .checks import one_of, positive_int
from .collection import labels_of
from .config import GENRES, PROTOCOLS, Config
from .errors import DataError, GenrelibError, GenrelibWarning, ParameterError, TrainingError
from .storage import atomic_path, atomic_write_csv, atomic_write_json, file_digest, output_dir, params_key

__all__ = [
    "TRAINING_VERSION",
    "PROTOCOLS",
    "OPTIMIZERS",
    "build_optimizer",
    "set_determinism",
    "fit_model",
    "fit_classifier",
    "make_splits",
    "clip_table",
    "check_clip_table",
    "data_checksum",
    "package_versions",
    "code_versions",
    "read_meta",
    "train_split",
    "run_protocol",
    "MIN_RUNS_FOR_WORKERS",
    "load_run",
    "find_runs",
    "run_problems",
]

OPTIMIZERS = ("rmsprop", "adam", "sgd")
#: Changes whenever a run of the same configuration, embeddings and seed would give other numbers (clip
#: table, network, fit loop, predictions); part of every run group's key.
TRAINING_VERSION = "train-1"
CHECKPOINTS = ("best", "last")
#: ``run_protocol(jobs="auto")`` starts worker processes only for at least this many runs: below it one TensorFlow
#: import per worker costs about as much as it saves.
MIN_RUNS_FOR_WORKERS = 4
_SIDES = ("train", "valid", "test")
#: Every file a run directory may hold (``baseline.csv`` is added by :func:`genrelib.evaluate.add_baseline`).
RUN_FILES = ("meta.json", "config.json", "split.json", "history.csv", "best.keras", "last.keras",
             "predictions.csv", "baseline.csv")


# ------------------------------------------------------------------------------------------ fitting

def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's ops deterministic (same seed, same weights).

    Op determinism is process-wide and slows some GPU kernels; on the CPU it costs little.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def _check_arrays(x, y, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ParameterError(f"x_{name} must have shape (n_clips >= 1, n_patches, d), got {x.shape}")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ParameterError(f"y_{name} must be integer genre labels of shape ({x.shape[0]},), got {y.dtype} {y.shape}")
    if not np.all(np.isfinite(x)):
        raise ParameterError(f"x_{name} holds {int(np.count_nonzero(~np.isfinite(x)))} NaN or infinite values")
    return x, y


def build_optimizer(train_config, *, learning_rate: float | None = None):
    """The Keras optimizer of ``train_config`` (Table 1: RMSprop, rho 0.9) at ``learning_rate`` (default: the
    configuration's, 1e-3)."""
    import keras

    kinds = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    kind = one_of(train_config.optimizer, OPTIMIZERS, "optimizer")
    options = {"rho": train_config.rho} if kind == "rmsprop" else {}
    return kinds[kind](learning_rate=train_config.learning_rate if learning_rate is None else learning_rate, **options)


def _recorder(run_dir: Path | None, *, progress: bool, epochs: int):
    """A Keras callback keeping the lowest-validation-loss weights in memory and, given ``run_dir``, writing
    ``history.csv`` after every epoch, atomically (Keras' own CSVLogger writes in place). :func:`fit_classifier`
    saves the kept weights as ``best.keras`` once training ends: an interrupted run is never resumed (it starts
    afresh), so a checkpoint per improvement would only cost time (about 90 ms a save, 10-20 saves a run)."""
    import keras
    from tqdm.auto import tqdm

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.rows, self.best_loss, self.best_epoch, self.best_weights = [], np.inf, None, None
            self.bar = tqdm(total=epochs, disable=not progress, desc="train", unit="epoch", leave=False)

        def on_epoch_end(self, epoch, logs=None):
            self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
            loss = self.rows[-1].get("loss", 0.0)
            # The cross-entropy clips probabilities, so weights gone to inf or NaN can still report a finite
            # loss on some CPUs: both count as diverged.
            weights_finite = all(np.all(np.isfinite(w)) for w in self.model.get_weights())
            if not (np.isfinite(loss) and weights_finite):
                self.bar.close()
                what = f"loss {loss}" if not np.isfinite(loss) else f"non-finite weights (loss {loss:.4g})"
                raise TrainingError(f"training diverged: epoch {epoch + 1} ended with {what} "
                                    f"(lower train.learning_rate); the run is left unfinished and is never used")
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in self.rows[-1].items() if k != "epoch"})
            val_loss = self.rows[-1].get("val_loss", np.nan)
            if np.isfinite(val_loss) and val_loss < self.best_loss:
                self.best_loss, self.best_epoch = val_loss, epoch + 1
                self.best_weights = self.model.get_weights()
            if run_dir is not None:
                atomic_write_csv(run_dir / "history.csv", pd.DataFrame(self.rows))

        def on_train_end(self, logs=None):
            self.bar.close()

    return Recorder()


def _save_model(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)


def fit_model(model, x, y=None, *, callbacks: list, **fit_options):
    """``model.fit(x, y, callbacks=callbacks, **fit_options)`` without Keras' own printing: genrelib's one training
    loop, for the classifier (:func:`fit_classifier`) and for each stage of fine-tuning
    (:func:`genrelib.finetune.fit.fit_stage`). Progress, history and checkpoints come from ``callbacks``.

    Returns
    -------
    keras.callbacks.History
    """
    from .quiet import filtered_native_stderr

    # Op determinism makes tf.data log a harmless NodeDef error once per fit (TensorFlow's own rewrite of its
    # parallel map keeps an attribute the sequential one lacks); it is filtered, other native output passes.
    with filtered_native_stderr():
        return model.fit(x, y, verbose=0, callbacks=callbacks, **fit_options)


def fit_classifier(x_train, y_train, *, x_valid=None, y_valid=None, config: Config = Config(), seed: int = 0,
                   run_dir: str | os.PathLike | None = None, progress: bool = False, n_classes: int | None = None):
    """Train the paper's CNN on arrays of clips.

    Notebook: 04_cnn_training.

    Parameters
    ----------
    x_train : np.ndarray [shape=(n, n_patches, d)]
        Training clips (already cropped / padded, see :func:`genrelib.model.stack_patches`).
    y_train : np.ndarray [shape=(n,)], int
        Label indices into the run's labels (:data:`genrelib.config.GENRES` for GTZAN; one-hot encoding
        happens here, for the categorical cross-entropy of Table 1).
    x_valid, y_valid : optional
        Validation clips: their loss and accuracy are logged each epoch and pick the ``"best"`` checkpoint.
    config : Config
        ``config.model`` builds the network, ``config.train`` trains it (optimizer, learning rate, rho,
        epochs, batch size, which checkpoint to return).
    seed : int
        Seeds weights, dropout and shuffling (:func:`set_determinism`): the same seed on the same machine
        gives identical weights and history.
    run_dir : path, optional
        Write ``history.csv`` each epoch, and at the end ``last.keras`` and (with validation data) ``best.keras``.
    progress : bool
        An epoch progress bar.
    n_classes : int >= 2, optional
        The network's outputs: how many labels (default ``len(GENRES)``, GTZAN's ten).

    Returns
    -------
    model : keras.Model
        With the weights of ``config.train.checkpoint`` (lowest validation loss, or the last epoch).
    history : pd.DataFrame
        One row per epoch: ``epoch`` (from 1), ``loss``, ``accuracy`` and, with validation data,
        ``val_loss``, ``val_accuracy``; ``history.attrs["best_epoch"]`` names the selected epoch.
    """
    import keras

    from .model import build_classifier

    x_train, y_train = _check_arrays(x_train, y_train, "train")
    has_valid = x_valid is not None and y_valid is not None
    if has_valid:
        x_valid, y_valid = _check_arrays(x_valid, y_valid, "valid")
        if x_valid.shape[1:] != x_train.shape[1:]:
            raise ParameterError(f"x_valid clips have shape {x_valid.shape[1:]}, x_train clips {x_train.shape[1:]}")
    train = config.train
    one_of(train.checkpoint, CHECKPOINTS, "checkpoint")
    if train.checkpoint == "best" and not has_valid:
        raise ParameterError("checkpoint='best' picks the epoch by validation loss: pass x_valid and y_valid, "
                             "or set train.checkpoint='last'")
    epochs, batch_size = positive_int(train.epochs, "epochs"), positive_int(train.batch_size, "batch_size")
    one_of(train.loss, ("categorical_crossentropy",), "loss")
    n_classes = len(GENRES) if n_classes is None else positive_int(n_classes, "n_classes")
    if y_train.min() < 0 or max(y_train.max(), y_valid.max() if has_valid else 0) >= n_classes:
        raise ParameterError(f"labels must lie in [0, {n_classes - 1}] (indices into the run's labels)")
    run_dir = Path(run_dir) if run_dir is not None else None

    set_determinism(seed)
    model = build_classifier(n_patches=x_train.shape[1], embedding_dim=x_train.shape[2], n_classes=n_classes,
                             config=config.model, normalization_data=x_train)
    model.compile(optimizer=build_optimizer(train), loss=train.loss, metrics=["accuracy"], jit_compile=False)
    recorder = _recorder(run_dir, progress=progress, epochs=epochs)
    validation = (x_valid, keras.utils.to_categorical(y_valid, n_classes)) if has_valid else None
    fit_model(model, x_train, keras.utils.to_categorical(y_train, n_classes), validation_data=validation,
              epochs=epochs, batch_size=batch_size, shuffle=True, callbacks=[recorder])
    if run_dir is not None:
        _save_model(model, run_dir / "last.keras")
    history = pd.DataFrame(recorder.rows)
    history.attrs["best_epoch"] = epochs
    if recorder.best_weights is not None:
        last_weights = model.get_weights()
        model.set_weights(recorder.best_weights)
        if run_dir is not None:
            _save_model(model, run_dir / "best.keras")
        if train.checkpoint == "best":
            history.attrs["best_epoch"] = recorder.best_epoch
        else:
            model.set_weights(last_weights)
    return model, history


# ------------------------------------------------------------------------------------ splits & items

def _n_folds(index: pd.DataFrame, folds: int) -> int:
    if folds:
        return positive_int(folds, "folds")
    k = 10 if index["genre"].value_counts().min() >= 50 else 5
    groups = gdata.split_groups(index)
    if groups is not None:  # a small collection: as many folds as its smallest label can test, at least 2
        k = max(2, min(k, int(pd.Series(groups).groupby(index["genre"].to_numpy()).nunique().min())))
    return k


def make_splits(index: pd.DataFrame, *, protocol: str, seed: int = 0, config: Config = Config()) -> list[gdata.Split]:
    """The track splits of one protocol and seed.

    Notebook: 04_cnn_training.

    Parameters
    ----------
    index : pd.DataFrame
        ``track_id`` and ``genre`` per track (:func:`genrelib.data.load_gtzan`).
    protocol : {"paper", "fault_filtered", "kfold", "artist"}
        ``"paper"``: stratified random ``test_size`` split with validation carved from training (the
        paper's most likely setting); ``"fault_filtered"``: Kereliuk et al.'s artist-disjoint split (the
        same for every seed: seeds then vary only the network); ``"kfold"``: stratified k-fold
        (``config.train.folds``; 10, or 5 on a set with fewer than 50 tracks per genre); ``"artist"``: as
        many folds, artist-disjoint, at most the smallest testable genre's tracks
        (:func:`genrelib.data.split_by_artist`). On a collection (an index with ``group``) every split is
        by group; ``fault_filtered`` (GTZAN's own lists) is refused, and ``artist`` needs manifest groups.
    seed : int
        Seeds the random splits.

    Returns
    -------
    list of Split
        One split (``paper``, ``fault_filtered``) or k folds (``kfold``, ``artist``).
    """
    one_of(protocol, PROTOCOLS, "protocol")
    train = config.train
    collection = gdata.split_groups(index) is not None
    if collection and protocol == "fault_filtered":
        raise DataError("protocol 'fault_filtered' is Kereliuk et al.'s lists of GTZAN tracks: it exists only for "
                        "GTZAN; use paper, kfold or (with groups in a manifest) artist on this collection")
    if collection and protocol == "artist" and not index["artist"].notna().any():
        raise DataError("protocol 'artist' needs the artist of each track: give the collection as a CSV manifest "
                        "with a group column (artist or album); paper and kfold already keep each track's "
                        "excerpts together")
    if protocol == "paper":
        return [gdata.split_random(index, test_size=train.test_size, valid_size=train.valid_size, seed=seed)]
    if protocol == "fault_filtered":
        split = gdata.split_fault_filtered(index)
        if not split.test or not split.train:
            raise DataError(f"the fault-filtered split keeps {len(split.train)} training and {len(split.test)} "
                            f"test tracks of this data set: too few to train and test")
        return [split]
    if protocol == "artist":
        return gdata.split_by_artist(index, k=train.folds or None, seed=seed, valid_size=train.valid_size)
    return gdata.kfold(index, k=_n_folds(index, train.folds), seed=seed, valid_size=train.valid_size)


def clip_table(split: gdata.Split, tracks: pd.DataFrame, *, augmented: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every clip a run uses, with its side: the split's tracks plus augmented copies of training tracks.

    Notebook: 04_cnn_training.

    Parameters
    ----------
    split : Split
    tracks : pd.DataFrame
        Embedded tracks (:func:`genrelib.embed.embed_dataset` of the index): ``track_id``, ``genre``,
        ``embedding_path``.
    augmented : pd.DataFrame, optional
        Embedded augmentation manifest of this split (``item_id``, ``track_id``, ``genre``, ``method``,
        ``embedding_path``); its ``"original"`` rows are ignored, since the originals come from ``tracks``.

    Returns
    -------
    pd.DataFrame
        ``item_id``, ``track_id``, ``genre``, ``method``, ``side``, ``embedding_path``.

    Raises
    ------
    DataError
        A track of the split has no embedding (missing, or failed in ``embed_dataset``).
    LeakageError
        An augmented clip derives from a validation or test track (or one outside the split): augmented
        copies are training material only, and validation and test see originals only.
    """
    needed = {"track_id", "genre", "embedding_path"}
    if not needed <= set(tracks.columns):
        raise ParameterError(f"tracks needs columns {sorted(needed)} (from genrelib.embed.embed_dataset)")
    by_id = tracks.set_index("track_id")
    rows = []
    for side in _SIDES:
        for track_id in getattr(split, side):
            path = by_id["embedding_path"].get(track_id)
            if path is None or pd.isna(path):
                raise DataError(f"track {track_id} ({side}) has no embedding: embed it first "
                                f"(genrelib.embed.embed_dataset) or check its 'error' column")
            rows.append({"item_id": track_id, "track_id": track_id, "genre": by_id.at[track_id, "genre"],
                         "method": "original", "side": side, "embedding_path": path})
    table = pd.DataFrame(rows)
    if augmented is not None and len(augmented):
        copies = augmented[augmented["method"] != "original"].assign(side="train")
        failed = copies[copies["embedding_path"].isna()]
        if len(failed):
            raise DataError(f"{len(failed)} augmented clip(s) have no embedding, e.g. {failed['item_id'].iloc[0]}: "
                            f"check the manifest's 'error' column")
        table = pd.concat([table, copies[list(table.columns)]], ignore_index=True)
    return check_clip_table(split, table)


def check_clip_table(split: gdata.Split, table: pd.DataFrame) -> pd.DataFrame:
    """Return ``table`` (``item_id``, ``track_id``, ``side``, ...) once no item is listed twice and no training
    item derives from a validation or test track of ``split``; raise ``DataError`` / ``LeakageError`` otherwise.

    The augmentation stage's guard, run on the final training table: what it passes is exactly what the
    network learns from.
    """
    from .augment import assert_no_leakage

    if table["item_id"].duplicated().any():
        repeated = sorted(set(table.loc[table["item_id"].duplicated(), "item_id"]))
        raise DataError(f"item id(s) listed twice: {', '.join(repeated[:5])}")
    assert_no_leakage(split, table[table["side"] == "train"])
    return table


def data_checksum(tracks: pd.DataFrame) -> str:
    """A short hash of the audio of every track (``track_id`` and the SHA-256 of its file).

    Stored in each run's ``meta.json`` and part of a protocol's folder name, so results computed on
    different data never mix. Reads every file once (about 2 s for the 1.2 GB of full GTZAN).
    """
    return params_key({row.track_id: file_digest(row.path) for row in tracks.itertuples()})


# ------------------------------------------------------------------------------------- run directories

def package_versions() -> dict[str, str]:
    """Python, genrelib and the numerical packages' versions, as recorded with every run."""
    from . import __version__
    from .storage import library_versions

    return {"python": platform.python_version(), "genrelib": __version__,
            **library_versions("numpy", "tensorflow", "keras", "scikit-learn", "librosa", "pandas")}


def code_versions(augmented_for: Callable | None = None) -> dict[str, Any]:
    """What decides a run's numbers besides its configuration, backend, data and seed: this module's
    :data:`TRAINING_VERSION` (clip table, model, fit loop, predictions), the embedding and decoding code
    and, for augmented runs, the augmented clips' provenance (``augmented_for.provenance``, set by
    :func:`genrelib.pipeline.make_augmenter`: augmentation seed and :func:`genrelib.augment.code_versions`).

    Part of every run group's key (:func:`run_protocol`), so a run trained by other code, or on clips
    augmented by other code or another seed, is never reused.
    """
    from . import audio
    from .embed import EMBEDDING_VERSION

    versions: dict[str, Any] = {"training": TRAINING_VERSION, "embedding": EMBEDDING_VERSION,
                                **audio.decoding_versions(), **package_versions()}
    if augmented_for is not None:
        provenance = getattr(augmented_for, "provenance", None)
        versions["augmentation"] = provenance if provenance is not None else \
            f"{getattr(augmented_for, '__module__', '?')}.{getattr(augmented_for, '__qualname__', '?')}"
    return versions


def _git_commit() -> str:
    """The commit of the genrelib checkout (``+dirty`` with uncommitted changes), or ``"unknown"``."""
    folder = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def _backend_info(backend) -> dict[str, Any]:
    if isinstance(backend, dict):
        return backend
    from .embed import get_backend

    model = get_backend(backend) if isinstance(backend, str) else backend
    return {"name": model.name, "weights_checksum": model.weights_checksum(),
            "front_end_version": model.front_end_version, "embedding_dim": int(model.embedding_dim)}


def read_meta(run_dir: str | os.PathLike) -> dict | None:
    """A run folder's ``meta.json`` (training or fine-tuning), or None when it is missing or unreadable."""
    try:
        return json.loads((Path(run_dir) / "meta.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _is_complete(run_dir: Path) -> bool:
    """A finished training run (fine-tuning runs, ``"kind": "finetune"``, may share the runs folder)."""
    meta = read_meta(run_dir) or {}
    return meta.get("status") == "complete" and meta.get("kind", "train") == "train"


def _arrays(clips: pd.DataFrame, *, n_patches: int, pad_mode: str,
            labels: tuple[str, ...] = GENRES) -> tuple[np.ndarray, np.ndarray]:
    from .embed import load_embeddings
    from .model import stack_patches

    unknown = sorted(set(clips["genre"]) - set(labels))
    if unknown:
        raise DataError(f"unknown label(s) {', '.join(unknown)}; expected {', '.join(labels)}")
    x = stack_patches(load_embeddings(clips), n_patches=n_patches, pad_mode=pad_mode)
    y = np.array([labels.index(g) for g in clips["genre"]], dtype=np.int64)
    return x, y


def train_split(split: gdata.Split, tracks: pd.DataFrame, *, run_dir: str | os.PathLike,
                augmented: pd.DataFrame | None = None, config: Config = Config(), seed: int = 0,
                backend: Any = "auto", data: dict | None = None, overwrite: bool = False,
                progress: bool = False, labels=None) -> Path:
    """Train on one split and store everything about the run in ``run_dir``.

    Notebook: 04_cnn_training.

    Parameters
    ----------
    split : Split
    tracks : pd.DataFrame
        Embedded tracks (``track_id``, ``genre``, ``path``, ``embedding_path``, ``n_patches``).
    run_dir : path
        Created if needed. Skipped (and returned) when it holds a complete run, unless ``overwrite``.
    augmented : pd.DataFrame, optional
        Embedded augmentation manifest of ``split`` (used when ``config.augment_training``).
    config : Config
    seed : int
        Network seed (weights, dropout, shuffling).
    backend : str, backend object or dict
        The embedding backend that made ``tracks`` (its name, weights checksum and front end are recorded;
        ``predict`` embeds new audio with it).
    data : dict, optional
        Facts about the data recorded in ``meta.json``, e.g. ``{"root": ..., "source": ...,
        "checksum": ...}``; the checksum is computed when absent.
    labels : sequence of str, optional
        The network's outputs, in order, stored as ``meta["genres"]``; default
        :func:`genrelib.collection.labels_of` the tracks (GTZAN's ten for GTZAN).

    Returns
    -------
    Path
        ``run_dir``, holding ``config.json``, ``split.json``, ``meta.json``, ``history.csv``,
        ``best.keras`` (with validation tracks), ``last.keras`` and ``predictions.csv``.
    """
    run_dir = Path(run_dir)
    if _is_complete(run_dir) and not overwrite:
        return run_dir
    if config.augment_training and augmented is None:
        raise ParameterError("config.augment_training is on but no augmented clips were given; pass "
                             "augmented=... or set augment_training=False")
    clips = clip_table(split, tracks, augmented=augmented if config.augment_training else None)
    training = clips[clips["side"] == "train"]
    # The median length of the training originals: a typical clip passes intact, others are cropped/padded.
    n_patches = int(np.median(tracks.set_index("track_id").loc[list(split.train), "n_patches"]))
    pad_mode = config.model.pad_mode
    labels = labels_of(tracks["genre"], labels)
    x_train, y_train = _arrays(training, n_patches=n_patches, pad_mode=pad_mode, labels=labels)
    evaluated = clips[clips["side"].isin(["valid", "test"])]
    x_eval, y_eval = _arrays(evaluated, n_patches=n_patches, pad_mode=pad_mode, labels=labels)
    is_valid = (evaluated["side"] == "valid").to_numpy()

    # An unfinished or overwritten run starts afresh: no file of an earlier attempt may survive beside the
    # new ones (a stale baseline.csv, a best.keras of other weights). Only our own files are removed.
    for name in RUN_FILES:
        run_dir.joinpath(name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "status": "running", "kind": "train", "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "seed": int(seed),
        "protocol": split.protocol, "split_seed": split.seed, "fold": split.fold,
        "backend": _backend_info(backend), "n_patches": n_patches, "embedding_dim": int(x_train.shape[2]),
        "genres": list(labels), "augmented": bool(config.augment_training),
        "clips": {side: int((clips["side"] == side).sum()) for side in _SIDES},
        "augmented_clips": int((training["method"] != "original").sum()),
        "data": {**(data or {}), "checksum": (data or {}).get("checksum") or data_checksum(tracks)},
        "versions": package_versions(), "git_commit": _git_commit(), "host": platform.node(),
        "cpu_count": os.cpu_count(),
    }
    config.to_json(run_dir / "config.json")
    split.to_json(run_dir / "split.json")
    atomic_write_json(run_dir / "meta.json", meta)
    started = time.perf_counter()
    model, history = fit_classifier(x_train, y_train, x_valid=x_eval[is_valid] if is_valid.any() else None,
                                    y_valid=y_eval[is_valid] if is_valid.any() else None, config=config,
                                    seed=seed, run_dir=run_dir, progress=progress, n_classes=len(labels))
    from .quiet import filtered_native_stderr

    with filtered_native_stderr():  # the same harmless tf.data NodeDef line as in fit_classifier
        probabilities = model.predict(x_eval, batch_size=256, verbose=0)
    if not np.all(np.isfinite(probabilities)):
        raise TrainingError(f"{run_dir}: the trained network gives non-finite probabilities; the run is left "
                            f"unfinished and is never used")
    predictions = evaluated[["item_id", "track_id", "genre", "side"]].reset_index(drop=True)
    predictions["predicted"] = [labels[i] for i in probabilities.argmax(axis=1)]
    predictions[[f"p_{g}" for g in labels]] = probabilities
    atomic_write_csv(run_dir / "predictions.csv", predictions)
    meta.update(status="complete", best_epoch=int(history.attrs["best_epoch"]),
                train_seconds=round(time.perf_counter() - started, 2))
    atomic_write_json(run_dir / "meta.json", meta)
    return run_dir


def run_protocol(tracks: pd.DataFrame, *, config: Config = Config(), backend: Any = "auto",
                 augmented_for: Callable[[gdata.Split], pd.DataFrame] | None = None,
                 runs_dir: str | os.PathLike | None = None, data: dict | None = None, overwrite: bool = False,
                 progress: bool = True, labels=None, jobs: int | str = 1) -> list[Path]:
    """Train every split of ``config.protocol`` for ``config.train.n_seeds`` seeds.

    Notebook: 04_cnn_training.

    Parameters
    ----------
    tracks : pd.DataFrame
        Embedded index of all tracks.
    config : Config
        ``protocol``, ``seed`` (the first seed), ``augment_training``, ``model``, ``train``.
    backend : str, backend object or dict
        The backend that embedded ``tracks``.
    augmented_for : callable Split -> pd.DataFrame, optional
        Returns the embedded augmentation manifest of a split (augmenting only its training tracks);
        required when ``config.augment_training``. The pipeline passes one built on
        ``genrelib.augment.augment_split`` and :func:`genrelib.embed.embed_dataset`.
    runs_dir : path, optional
        Parent of the protocol's folder; default ``output_dir("runs")``.
    labels : sequence of str, optional
        As for :func:`train_split` (default: those of ``tracks``).
    jobs : int >= 1 or "auto"
        Runs trained side by side, each in a worker process of its own (``1``: here, one after the other).
        ``"auto"``: two workers when the machine has at least two CPUs and at least :data:`MIN_RUNS_FOR_WORKERS`
        runs are left to train, else one. A run of the paper's CNN on the mini set spends most of its seconds in
        Keras' per-epoch bookkeeping, not in arithmetic, so two workers on 2 cores trained 15 k-fold runs 1.38x
        (1.48x with augmentation) as fast as one (``benchmarks/bench_jobs.py``), each worker's TensorFlow import
        (about 5 s) included. Every run gives the numbers it gives alone (seeds are per run;
        ``tests/test_train.py`` compares the predictions).

    Returns
    -------
    list of Path
        One run directory per (seed, split), under
        ``<runs_dir>/<protocol>-<backend>-<aug|noaug>-<key>/seed<S>-fold<F>``, ``key`` hashing the
        configuration (less its seed), backend and data checksum: changing any of them starts a new folder,
        re-running the same one resumes it. The key also holds :func:`code_versions`: runs made by other
        code, or on clips augmented by other code or seed, are never reused.
    """
    config.validate()
    n_seeds = positive_int(config.train.n_seeds, "n_seeds")
    if config.augment_training and augmented_for is None:
        raise ParameterError("config.augment_training is on: pass augmented_for=... (a function returning the "
                             "embedded augmentation manifest of a split), or set augment_training=False")
    backend_info = _backend_info(backend)
    data = {**(data or {}), "checksum": (data or {}).get("checksum") or data_checksum(tracks)}
    settings = config.keyed_settings()
    code = code_versions(augmented_for if config.augment_training else None)
    key = params_key({"config": settings, "backend": backend_info, "data": data["checksum"], "code": code},
                     length=8)
    group = Path(runs_dir or output_dir("runs")) / \
        f"{config.protocol}-{backend_info['name']}-{'aug' if config.augment_training else 'noaug'}-{key}"
    from tqdm.auto import tqdm

    from .progress import nested

    _n_workers(jobs, 1)  # a bad ``jobs`` is refused before any work
    splits = [(seed, split) for seed in range(config.seed, config.seed + n_seeds)
              for split in make_splits(tracks, protocol=config.protocol, seed=seed, config=config)]
    run_dirs = [group / f"seed{seed}-fold{split.fold or 0}" for seed, split in splits]
    todo = [(seed, split, run_dir) for (seed, split), run_dir in zip(splits, run_dirs)
            if overwrite or not _is_complete(run_dir)]
    bar = tqdm(total=len(run_dirs), initial=len(run_dirs) - len(todo), desc=f"{config.protocol} runs", unit="run",
               disable=not progress)

    def train_kwargs() -> Iterator[dict[str, Any]]:
        for seed, split, run_dir in todo:
            with nested():  # one bar over the runs stays; each run's augment, embed and epoch bars vanish when done
                augmented = augmented_for(split) if config.augment_training else None
            yield dict(split=split, tracks=tracks, run_dir=run_dir, augmented=augmented, seed=seed, data=data,
                       config=config.replace(seed=seed), backend=backend_info, overwrite=overwrite, labels=labels)

    with bar:
        n_workers = _n_workers(jobs, len(todo))
        if n_workers == 1:
            for kwargs in train_kwargs():
                with nested():
                    train_split(**kwargs)
                bar.update(1)
        else:
            _train_in_workers(train_kwargs(), n_workers=n_workers, on_done=lambda: bar.update(1))
    return run_dirs


def _n_workers(jobs: int | str, n_runs: int) -> int:
    if jobs == "auto":
        return 2 if (os.cpu_count() or 1) >= 2 and n_runs >= MIN_RUNS_FOR_WORKERS else 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ParameterError(f"jobs={jobs!r} must be a whole number >= 1 or 'auto'")
    return max(1, min(jobs, n_runs))


def _train_one(kwargs: dict[str, Any]) -> str:
    """:func:`train_split` in a worker process (:func:`run_protocol` with ``jobs`` > 1)."""
    return str(train_split(**kwargs))


def _train_in_workers(jobs, *, n_workers: int, on_done: Callable[[], None]) -> None:
    """Train ``jobs`` (keyword arguments of :func:`train_split`) in ``n_workers`` processes. The next run's
    arguments (its augmented clips) are prepared here while the workers train; at most ``n_workers`` runs wait
    in the queue. The first failure stops the runs not yet started and is raised as it was raised in the
    worker; finished runs stay complete on disk."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
    from concurrent.futures.process import BrokenProcessPool

    from .augment import die_with_parent

    # A fork server, not fork: the caller may run threads (Jupyter, TensorFlow), which fork does not copy safely.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=context, initializer=die_with_parent) as pool:
        running: set = set()

        def collect(finished) -> None:
            for future in finished:
                future.result()  # a worker's exception is raised here
                on_done()

        try:
            for kwargs in jobs:
                if len(running) >= 2 * n_workers:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    collect(done)
                running.add(pool.submit(_train_one, kwargs))
            collect(as_completed(running))
        except BrokenProcessPool as error:
            raise TrainingError(f"a training worker process died ({error}): out of memory, or a script that "
                                f"calls this without `if __name__ == \"__main__\":`? Finished runs are kept; "
                                f"jobs=1 trains the rest in this process") from None
        finally:
            pool.shutdown(cancel_futures=True)


def run_problems(run_dir: str | os.PathLike) -> list[str]:
    """What is wrong with a complete run folder, one phrase per problem (empty when it is sound): the one place
    that checks a run's files before anything reads them."""
    return _read_run_files(Path(run_dir))[1]


def _read_run_files(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """``meta``, ``config`` and ``split`` of a run folder, each read once, and every problem found doing so."""
    import zipfile

    problems: list[str] = []
    for name in ("config.json", "split.json", "history.csv", "predictions.csv"):
        if not (run_dir / name).is_file():
            problems.append(f"{name} is missing")
    parts: dict[str, Any] = {"meta": read_meta(run_dir) or {}}
    meta = parts["meta"]
    backend = meta.get("backend")
    if not isinstance(backend, dict) or not {"name", "weights_checksum"} <= set(backend):
        problems.append("meta.json lacks the backend (name and weights_checksum)")
    if not isinstance(meta.get("n_patches"), int) or isinstance(meta.get("n_patches"), bool) \
            or meta["n_patches"] <= 0:
        problems.append(f"meta.json's n_patches={meta.get('n_patches')!r} is not a positive integer")
    for network in (run_dir / name for name in ("best.keras", "last.keras")):
        if network.exists() and not zipfile.is_zipfile(network):
            problems.append(f"{network.name} is not a complete Keras file (truncated?)")
    for key, read in (("config", Config.from_json), ("split", gdata.Split.from_json)):
        if (run_dir / f"{key}.json").is_file():
            try:
                parts[key] = read(run_dir / f"{key}.json")
            except (GenrelibError, OSError, ValueError, TypeError, KeyError) as exc:
                problems.append(f"{key}.json is unreadable ({exc})")
    return parts, problems


def find_runs(root: str | os.PathLike | None = None) -> list[Path]:
    """Complete run directories under ``root`` (default ``output_dir("runs")``), oldest first."""
    root = Path(root) if root is not None else output_dir("runs", create=False)
    if not root.exists():
        return []
    metas = {path.parent: read_meta(path.parent) or {} for path in root.rglob("meta.json")}
    training = [run for run, meta in metas.items() if meta.get("kind", "train") == "train"]
    runs = [run for run in training if metas[run].get("status") == "complete"]
    if len(runs) < len(training):
        unfinished = sorted(set(training) - set(runs))
        warnings.warn(f"{root}: {len(unfinished)} unfinished training run(s) skipped (interrupted or diverged), "
                      f"e.g. {unfinished[0]}", GenrelibWarning, stacklevel=2)
    return sorted(runs, key=lambda run: (run.joinpath("meta.json").stat().st_mtime, str(run)))


def load_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read a run directory back: ``config`` (Config), ``split`` (Split), ``meta`` (dict), ``history`` and
    ``predictions`` (DataFrames) and ``run_dir``.

    Raises :class:`DataError` naming the folder when it is not a complete run.
    """
    run_dir = Path(run_dir)
    if not _is_complete(run_dir):
        raise DataError(f"{run_dir}: not a complete training run (no meta.json with status 'complete'); "
                        f"train with `genrelib train` or genrelib.train.train_split")
    parts, problems = _read_run_files(run_dir)
    if problems:
        raise DataError(f"{run_dir}: damaged run folder: {'; '.join(problems)} - train it again "
                        f"(`genrelib train --overwrite`)")
    return {
        "run_dir": run_dir,
        "config": parts["config"],
        "split": parts["split"],
        "meta": parts["meta"],
        "history": pd.read_csv(run_dir / "history.csv"),
        "predictions": pd.read_csv(run_dir / "predictions.csv"),
    }
