"""Predicting the genre of any audio file with a trained run.

Notebook: 05_evaluation.

A run directory (:func:`genrelib.train.train_split`) holds the network and names the embedding backend it
was trained on; :func:`load_classifier` loads both, checking that the backend's weights are those the
network learned from. A file is decoded, down-mixed and resampled by :func:`genrelib.audio.load` (so any
format, sample rate and channel count it reads works, and bad files raise the same :class:`AudioError`),
embedded, and cut into windows of the network's input length whose genre probabilities are averaged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .checks import one_of, positive_int
from .config import GENRES, Config
from .errors import DataError, GenrelibError, TrainingError, WeightsError

__all__ = ["Classifier", "load_classifier", "latest_run", "window_patches", "predict_audio", "predict_files",
           "patch_timeline", "ZERO_SHOT_CLASSES", "zero_shot"]


@dataclass
class Classifier:
    """A trained network with everything needed to use it: input length, padding, backend, provenance."""

    model: Any
    backend: Any
    n_patches: int
    pad_mode: str
    run_dir: Path
    meta: dict


def latest_run(root: str | os.PathLike | None = None) -> Path:
    """The most recently finished run under ``root`` (default ``output_dir("runs")``).

    Raises :class:`WeightsError` when there is none.
    """
    from .train import find_runs

    runs = find_runs(root)
    if not runs:
        where = root if root is not None else "runs/"
        raise WeightsError(f"no trained model found under {where}: train one with `genrelib train` "
                           f"(or `genrelib run`), or pass --model RUN_DIR")
    return runs[-1]


def load_classifier(run_dir: str | os.PathLike | None = None, *, backend: Any = None) -> Classifier:
    """Load a run's network (the checkpoint its test predictions came from) and its embedding backend.

    Notebook: 05_evaluation.

    Parameters
    ----------
    run_dir : path, optional
        A complete run directory; default :func:`latest_run`.
    backend : backend object, optional
        Use this object instead of creating the run's backend by name (tests, or a loop that already holds it).

    Raises
    ------
    DataError
        ``run_dir`` is not a complete run.
    WeightsError
        The checkpoint is missing or unreadable, or the backend's weights differ from the run's.
    """
    import keras

    from .embed import get_backend
    from .train import load_run

    run_dir = Path(run_dir) if run_dir is not None else latest_run()
    run = load_run(run_dir)
    config: Config = run["config"]
    checkpoint = run_dir / ("best.keras" if config.train.checkpoint == "best" else "last.keras")
    if not checkpoint.exists():  # a run without validation tracks has no best checkpoint
        checkpoint = run_dir / "last.keras"
    if not checkpoint.exists():
        raise WeightsError(f"{run_dir}: damaged run folder: no saved network (best.keras or last.keras) - train it "
                           f"again (`genrelib train --overwrite`)")
    try:
        model = keras.models.load_model(checkpoint)
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{checkpoint}: cannot load the trained network ({exc})") from exc
    recorded = run["meta"]["backend"]
    backend = backend if backend is not None else get_backend(recorded["name"])
    if backend.weights_checksum() != recorded["weights_checksum"]:
        raise WeightsError(f"{run_dir}: the network learned from {recorded['name']} embeddings with weights "
                           f"{recorded['weights_checksum']}, but the backend now has {backend.weights_checksum()}; "
                           f"retrain, or restore those weights")
    return Classifier(model=model, backend=backend, n_patches=int(run["meta"]["n_patches"]),
                      pad_mode=config.model.pad_mode, run_dir=run_dir, meta=run["meta"])


def window_patches(embedding: np.ndarray, *, n_patches: int, pad_mode: str = "repeat") -> np.ndarray:
    """Cut a clip's embedding sequence into the network's input windows.

    Notebook: 05_evaluation.

    Parameters
    ----------
    embedding : np.ndarray [shape=(n, d)]
    n_patches : int > 0
    pad_mode : {"repeat", "zero"}

    Returns
    -------
    np.ndarray [shape=(n_windows, n_patches, d)]
        A clip of at most ``n_patches`` rows gives one window, padded as in training
        (:func:`genrelib.model.fit_patches`). A longer one gives consecutive non-overlapping windows from
        its start, plus one ending at its last row when the length is not a multiple, so every patch is
        seen and none is invented: ``ceil(n / n_patches)`` windows.
    """
    from .model import fit_patches

    n_patches = positive_int(n_patches, "n_patches")
    embedding = np.asarray(embedding, dtype=np.float32)
    n = embedding.shape[0] if embedding.ndim == 2 else 0
    if n <= n_patches:
        return fit_patches(embedding, n_patches=n_patches, pad_mode=pad_mode)[np.newaxis]
    starts = list(range(0, n - n_patches + 1, n_patches))
    if starts[-1] + n_patches < n:
        starts.append(n - n_patches)
    return np.stack([embedding[start:start + n_patches] for start in starts])


def predict_audio(y: np.ndarray, *, sr: int, classifier: Classifier) -> np.ndarray:
    """Genre probabilities of one mono waveform.

    Notebook: 05_evaluation.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
    sr : int > 0 [Hz]
        Resampled to the backend's rate when different.
    classifier : Classifier
        From :func:`load_classifier`.

    Returns
    -------
    np.ndarray [shape=(10,)]
        Probabilities in :data:`genrelib.config.GENRES` order: the mean over the clip's windows
        (:func:`window_patches`).
    """
    from .embed import embed_audio

    embedding = embed_audio(y, sr=sr, backend=classifier.backend)
    windows = window_patches(embedding, n_patches=classifier.n_patches, pad_mode=classifier.pad_mode)
    probabilities = classifier.model.predict(windows, verbose=0).mean(axis=0)
    if not np.all(np.isfinite(probabilities)):
        raise TrainingError(f"{classifier.run_dir}: the model gives non-finite probabilities (a diverged run?); "
                            f"train it again")
    return probabilities


def patch_timeline(y: np.ndarray, *, sr: int, classifier: Classifier) -> pd.DataFrame:
    """What the network makes of each patch of a clip on its own: genre probabilities over time.

    Notebook: 05_evaluation (misclassified clips). Each embedding row is given to the network alone, filled
    to the input length as training fills a short clip (``classifier.pad_mode``, by default repeating it), so
    a row's probabilities say which genre that moment sounds like to the network; :func:`predict_audio`
    averages whole windows instead.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
    sr : int > 0 [Hz]
    classifier : Classifier

    Returns
    -------
    pd.DataFrame
        One row per patch: ``start`` and ``end`` [s], ``p_<genre>`` for every genre.
    """
    from .embed import embed_audio
    from .model import fit_patches

    backend = classifier.backend
    embedding = embed_audio(y, sr=sr, backend=backend)
    windows = np.stack([fit_patches(row[np.newaxis], n_patches=classifier.n_patches, pad_mode=classifier.pad_mode)
                        for row in embedding])
    probabilities = classifier.model.predict(windows, verbose=0)
    starts = np.arange(len(embedding)) * backend.patch_hop_seconds
    frame = pd.DataFrame(probabilities, columns=[f"p_{g}" for g in GENRES])
    frame.insert(0, "end", starts + backend.patch_seconds)
    frame.insert(0, "start", starts)
    return frame


def predict_files(paths: Iterable[str | os.PathLike], *, classifier: Classifier | None = None,
                  run_dir: str | os.PathLike | None = None, on_error: str = "raise") -> pd.DataFrame:
    """Predict the genre of audio files.

    Notebook: 05_evaluation. CLI: ``genrelib predict FILE... [--model RUN_DIR]``.

    Parameters
    ----------
    paths : iterable of path
        Any format :func:`genrelib.audio.load` reads; any sample rate; mono or stereo (averaged).
    classifier : Classifier, optional
        A loaded classifier; else :func:`load_classifier` of ``run_dir``.
    run_dir : path, optional
        Default: the most recent run.
    on_error : {"raise", "report"}
        A file that cannot be used: raise its :class:`AudioError` at once, or report it in the ``error``
        column and go on with the others.

    Returns
    -------
    pd.DataFrame
        One row per file: ``path``, ``genre`` (most probable), ``probability`` (its probability),
        ``p_<genre>`` for every genre, ``error`` (``None`` when it worked).
    """
    from . import audio

    one_of(on_error, ("raise", "report"), "on_error")
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no audio files given")
    classifier = classifier or load_classifier(run_dir)
    backend = classifier.backend
    rows = []
    for path in paths:
        try:
            y = audio.load(path, sr=backend.sample_rate, min_duration=backend.patch_seconds)
            probabilities = predict_audio(y, sr=backend.sample_rate, classifier=classifier)
        except GenrelibError as exc:
            if on_error == "raise":
                raise
            rows.append({"path": str(path), "genre": None, "probability": np.nan,
                         **{f"p_{g}": np.nan for g in GENRES}, "error": str(exc)})
            continue
        best = int(np.argmax(probabilities))
        rows.append({"path": str(path), "genre": GENRES[best], "probability": float(probabilities[best]),
                     **{f"p_{g}": float(p) for g, p in zip(GENRES, probabilities)}, "error": None})
    return pd.DataFrame(rows)


#: The AudioSet class (YAMNet's :data:`~genrelib.yamnet.CLASS_NAMES`) that stands for each GTZAN genre.
ZERO_SHOT_CLASSES = {
    "blues": "Blues", "classical": "Classical music", "country": "Country", "disco": "Disco",
    "hiphop": "Hip hop music", "jazz": "Jazz", "metal": "Heavy metal", "pop": "Pop music",
    "reggae": "Reggae", "rock": "Rock music",
}


def zero_shot(paths: Iterable[str | os.PathLike], *, backend: Any = None, on_error: str = "raise") -> pd.DataFrame:
    """Genre of audio files without training: YAMNet's AudioSet scores of the ten genre classes.

    Notebook: 05_evaluation. CLI: ``genrelib predict --zero-shot FILE...``.

    For each file, the scores of the classes of :data:`ZERO_SHOT_CLASSES` are averaged over its 0.96 s
    patches (every 0.48 s); the genre with the highest mean score wins. AudioSet scores are independent
    sigmoids (a clip may be both "Rock music" and "Heavy metal"), so the ten ``p_<genre>`` do not sum to
    one; they are reported as they are, not renormalised.

    Parameters
    ----------
    paths : iterable of path
        Any format :func:`genrelib.audio.load` reads.
    backend : YAMNetBackend, optional
        Default: ``get_backend("yamnet")``.
    on_error : {"raise", "report"}
        As for :func:`predict_files`.

    Returns
    -------
    pd.DataFrame
        The columns of :func:`predict_files`: ``path``, ``genre``, ``probability`` (its mean score),
        ``p_<genre>``, ``error``.
    """
    from . import audio, yamnet
    from .embed import get_backend

    one_of(on_error, ("raise", "report"), "on_error")
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no audio files given")
    backend = backend or get_backend("yamnet")
    columns = [yamnet.CLASS_NAMES.index(ZERO_SHOT_CLASSES[genre]) for genre in GENRES]
    rows = []
    for path in paths:
        try:
            y = audio.load(path, sr=backend.sample_rate, min_duration=backend.patch_seconds)
            scores = backend.score_patches(backend.features(y))[:, columns].mean(axis=0)
        except GenrelibError as exc:
            if on_error == "raise":
                raise
            rows.append({"path": str(path), "genre": None, "probability": np.nan,
                         **{f"p_{g}": np.nan for g in GENRES}, "error": str(exc)})
            continue
        best = int(np.argmax(scores))
        rows.append({"path": str(path), "genre": GENRES[best], "probability": float(scores[best]),
                     **{f"p_{g}": float(p) for g, p in zip(GENRES, scores)}, "error": None})
    return pd.DataFrame(rows)
