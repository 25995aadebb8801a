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
from .errors import DataError, GenrelibError, ParameterError, TrainingError, WeightsError

__all__ = ["Classifier", "load_classifier", "latest_run", "window_patches", "predict_audio", "predict_files",
           "patch_timeline", "explain_audio", "explain_file", "explain_upload", "FIGURE_SUFFIXES",
           "write_prediction_figure", "ZERO_SHOT_CLASSES", "zero_shot_classes",
           "ZERO_SHOT_MODEL", "zero_shot", "zero_shot_genre_scores",
           "zero_shot_predictions", "zero_shot_summary", "evaluate_zero_shot", "zero_shot_comparison",
           "zero_shot_figure"]


@dataclass
class Classifier:
    """A trained network with everything needed to use it: input length, padding, backend, provenance."""

    model: Any
    backend: Any
    n_patches: int
    pad_mode: str
    run_dir: Path
    meta: dict

    @property
    def labels(self) -> tuple[str, ...]:
        """The run's labels in its network's output order (``meta["genres"]``: GTZAN's ten, or a collection's)."""
        return tuple(self.meta.get("genres") or GENRES)


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
    import keras  # after the checks: a wrong run folder is answered before seconds of TensorFlow import

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
    np.ndarray [shape=(n_labels,)]
        Probabilities in ``classifier.labels`` order (GTZAN's :data:`~genrelib.config.GENRES`, or the
        collection's labels the run was trained on): the mean over the clip's windows (:func:`window_patches`).
    """
    from .embed import embed_audio

    return _window_probabilities(embed_audio(y, sr=sr, backend=classifier.backend), classifier)


def _window_probabilities(embedding: np.ndarray, classifier: Classifier) -> np.ndarray:
    windows = window_patches(embedding, n_patches=classifier.n_patches, pad_mode=classifier.pad_mode)
    # One call on all windows (a few per file): predict() would build a tf.data pipeline around them each time,
    # about 0.1 s of a warm prediction.
    probabilities = np.asarray(classifier.model.predict_on_batch(windows)).mean(axis=0)
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
        One row per patch: ``start`` and ``end`` [s], ``p_<label>`` for every label of the run.
    """
    from .embed import embed_audio

    return _patch_probabilities(embed_audio(y, sr=sr, backend=classifier.backend), classifier)


def _patch_probabilities(embedding: np.ndarray, classifier: Classifier) -> pd.DataFrame:
    from .model import fit_patches

    backend = classifier.backend
    windows = np.stack([fit_patches(row[np.newaxis], n_patches=classifier.n_patches, pad_mode=classifier.pad_mode)
                        for row in embedding])
    probabilities = classifier.model.predict(windows, verbose=0)
    starts = np.arange(len(embedding)) * backend.patch_hop_seconds
    frame = pd.DataFrame(probabilities, columns=[f"p_{g}" for g in classifier.labels])
    frame.insert(0, "end", starts + backend.patch_seconds)
    frame.insert(0, "start", starts)
    return frame


def explain_audio(y: np.ndarray, *, sr: int, classifier: Classifier) -> tuple[np.ndarray, pd.DataFrame]:
    """:func:`predict_audio` and :func:`patch_timeline` of one clip from a single embedding.

    Notebook: 05_evaluation (the upload widget). CLI: ``genrelib predict --plot OUT.png FILE``.

    Returns
    -------
    probabilities : np.ndarray [shape=(n_labels,)]
        The mean over windows, in ``classifier.labels`` order (GTZAN's :data:`genrelib.config.GENRES`).
    timeline : pd.DataFrame
        Each patch on its own (``start``, ``end``, ``p_<label>``).
    """
    from .embed import embed_audio

    embedding = embed_audio(y, sr=sr, backend=classifier.backend)
    return _window_probabilities(embedding, classifier), _patch_probabilities(embedding, classifier)


def explain_file(path: str | os.PathLike, *, classifier: Classifier) -> tuple[np.ndarray, pd.DataFrame]:
    """:func:`explain_audio` of an audio file (any format, rate, channels :func:`genrelib.audio.load` reads).

    Raises
    ------
    AudioError
        The file cannot be used (its message names the file), or it is shorter than one patch.
    """
    from . import audio

    backend = classifier.backend
    y = audio.load(path, sr=backend.sample_rate, min_duration=backend.patch_seconds)
    return explain_audio(y, sr=backend.sample_rate, classifier=classifier)


def explain_upload(name: str, content: bytes, *, classifier: Classifier) -> tuple[np.ndarray, pd.DataFrame]:
    """:func:`explain_file` of uploaded bytes (a browser upload: a file name and its content).

    The bytes are written under their own name into a temporary folder, so the decoder sees the extension; an
    error names the upload, never that folder.

    Raises
    ------
    AudioError
        ``content`` is not audio of a known extension, or is too short; one line, naming ``name``.
    """
    import tempfile

    name = Path(str(name)).name or "upload"
    with tempfile.TemporaryDirectory(prefix="genrelib-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(bytes(content))
        try:
            return explain_file(path, classifier=classifier)
        except GenrelibError as exc:
            raise type(exc)(str(exc).replace(str(path), name)) from None


#: File types :func:`write_prediction_figure` writes (``genrelib predict --plot``).
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def write_prediction_figure(path: str | os.PathLike, probabilities: np.ndarray, timeline: pd.DataFrame, *,
                            title: str = "") -> Path:
    """Write :func:`genrelib.plots.prediction_figure` to ``path`` (PNG, PDF or SVG, by its suffix), atomically.

    Raises
    ------
    ParameterError
        Another suffix.
    StorageError
        The file cannot be written.
    """
    import matplotlib.pyplot as plt

    from .plots import prediction_figure
    from .storage import atomic_path

    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise ParameterError(f"{path}: the figure is written as .png, .pdf or .svg, not {path.suffix or 'no suffix'!r}")
    figure = prediction_figure(probabilities, timeline, title=title)
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=path.suffix.lower()[1:], dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


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
        One row per file: ``path``, ``genre`` (the most probable of the run's labels), ``probability`` (its
        probability), ``p_<label>`` for every label of the run, ``error`` (``None`` when it worked).
    """
    from . import audio

    one_of(on_error, ("raise", "report"), "on_error")
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no audio files given")
    classifier = classifier or load_classifier(run_dir)
    backend, labels = classifier.backend, classifier.labels
    rows = []
    for path in paths:
        try:
            y = audio.load(path, sr=backend.sample_rate, min_duration=backend.patch_seconds)
            probabilities = predict_audio(y, sr=backend.sample_rate, classifier=classifier)
        except GenrelibError as exc:
            if on_error == "raise":
                raise
            rows.append({"path": str(path), "genre": None, "probability": np.nan,
                         **{f"p_{g}": np.nan for g in labels}, "error": str(exc)})
            continue
        best = int(np.argmax(probabilities))
        rows.append({"path": str(path), "genre": labels[best], "probability": float(probabilities[best]),
                     **{f"p_{g}": float(p) for g, p in zip(labels, probabilities)}, "error": None})
    return pd.DataFrame(rows)


#: The AudioSet class (YAMNet's :data:`~genrelib.yamnet.CLASS_NAMES`) that stands for each GTZAN genre.
ZERO_SHOT_CLASSES = {
    "blues": "Blues", "classical": "Classical music", "country": "Country", "disco": "Disco",
    "hiphop": "Hip hop music", "jazz": "Jazz", "metal": "Heavy metal", "pop": "Pop music",
    "reggae": "Reggae", "rock": "Rock music",
}


def zero_shot_classes(labels=GENRES) -> list[int]:
    """The AudioSet class (index into YAMNet's :data:`~genrelib.yamnet.CLASS_NAMES`) of each label.

    A GTZAN genre maps through :data:`ZERO_SHOT_CLASSES`; any other label to the class of the same name or
    ``"<label> music"`` (case and ``_``/``-`` ignored: ``dance`` -> "Dance music", ``techno`` -> "Techno").

    Raises
    ------
    DataError
        Naming every label without an AudioSet class: zero-shot cannot answer with a label it has no class for.
    """
    from . import yamnet

    by_name = {name.lower(): i for i, name in enumerate(yamnet.CLASS_NAMES)}
    columns, unmapped = [], []
    for label in labels:
        if label in ZERO_SHOT_CLASSES:
            columns.append(yamnet.CLASS_NAMES.index(ZERO_SHOT_CLASSES[label]))
            continue
        name = str(label).replace("_", " ").replace("-", " ").strip().lower()
        found = by_name.get(name, by_name.get(f"{name} music"))
        if found is None:
            unmapped.append(label)
        columns.append(found)
    if unmapped:
        raise DataError(f"zero-shot needs an AudioSet class for every label; none matches "
                        f"{', '.join(map(repr, unmapped))} (train a run on these labels instead: genrelib run --data)")
    return columns


def zero_shot(paths: Iterable[str | os.PathLike], *, backend: Any = None, on_error: str = "raise",
              labels=GENRES) -> pd.DataFrame:
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
    labels : sequence of str
        The labels to choose from (default GTZAN's ten); each needs an AudioSet class
        (:func:`zero_shot_classes`, which names those that have none).

    Returns
    -------
    pd.DataFrame
        The columns of :func:`predict_files`: ``path``, ``genre``, ``probability`` (its mean score),
        ``p_<label>``, ``error``.
    """
    from . import audio
    from .embed import get_backend

    one_of(on_error, ("raise", "report"), "on_error")
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no audio files given")
    labels = tuple(labels)
    columns = zero_shot_classes(labels)  # before the model loads: an unmapped label costs nothing
    backend = backend or get_backend("yamnet")
    rows = []
    for path in paths:
        try:
            y = audio.load(path, sr=backend.sample_rate, min_duration=backend.patch_seconds)
            scores = backend.score_patches(backend.features(y))[:, columns].mean(axis=0)
        except GenrelibError as exc:
            if on_error == "raise":
                raise
            rows.append({"path": str(path), "genre": None, "probability": np.nan,
                         **{f"p_{g}": np.nan for g in labels}, "error": str(exc)})
            continue
        best = int(np.argmax(scores))
        rows.append({"path": str(path), "genre": labels[best], "probability": float(scores[best]),
                     **{f"p_{g}": float(p) for g, p in zip(labels, scores)}, "error": None})
    return pd.DataFrame(rows)


#: The ``model`` of zero-shot rows in the results tables.
ZERO_SHOT_MODEL = "YAMNet zero-shot (AudioSet classes)"
#: The ``protocol`` of zero-shot rows: nothing is trained, every track is a test track.
ZERO_SHOT_PROTOCOL = "zero-shot"


def _genre_columns() -> list[int]:
    from . import yamnet

    return [yamnet.CLASS_NAMES.index(ZERO_SHOT_CLASSES[genre]) for genre in GENRES]


def zero_shot_genre_scores(embeddings: Iterable[np.ndarray], *, backend: Any = None) -> np.ndarray:
    """Mean AudioSet scores of the ten genre classes of clips, from their cached YAMNet embeddings.

    YAMNet's class scores are ``sigmoid(embedding @ W + b)`` of its ``logits`` layer, one row per 0.96 s
    patch, so the cached embeddings of :func:`genrelib.embed.embed_dataset` give exactly the scores
    :func:`zero_shot` computes from the audio (to float32 rounding), without a second pass through the network.

    Parameters
    ----------
    embeddings : iterable of np.ndarray [shape=(n_patches_i, 1024)]
    backend : YAMNetBackend, optional
        Whose ``logits`` layer; default ``get_backend("yamnet")``.

    Returns
    -------
    np.ndarray [shape=(n_clips, 10)]
        Mean over each clip's patches of the sigmoid scores of the :data:`ZERO_SHOT_CLASSES`, in
        :data:`GENRES` order; independent sigmoids, not a distribution.
    """
    from .embed import get_backend

    backend = backend or get_backend("yamnet")
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in backend.model.get_layer("logits").get_weights())
    columns = _genre_columns()
    kernel, bias = kernel[:, columns], bias[columns]
    rows = []
    for embedding in embeddings:
        embedding = np.asarray(embedding, dtype=np.float64)
        if embedding.ndim != 2 or embedding.shape[1] != kernel.shape[0] or not len(embedding):
            raise ParameterError(f"a YAMNet embedding has shape (n_patches > 0, {kernel.shape[0]}), got "
                                 f"{embedding.shape}")
        rows.append((1.0 / (1.0 + np.exp(-(embedding @ kernel + bias)))).mean(axis=0))
    if not rows:
        raise DataError("no clips to score")
    return np.stack(rows)


def zero_shot_predictions(tracks: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """Zero-shot predictions in the shape of a run's ``predictions.csv`` (every track a test track).

    Parameters
    ----------
    tracks : pd.DataFrame
        ``track_id`` and ``genre`` (true), one row per clip.
    scores : np.ndarray [shape=(n_clips, 10)]
        Genre scores in :data:`GENRES` order (:func:`zero_shot_genre_scores`): non-negative, not all zero
        in a row.

    Returns
    -------
    pd.DataFrame
        ``item_id``, ``track_id``, ``genre``, ``side`` ("test"), ``predicted`` (the highest score),
        ``p_<genre>``: the scores **normalised to sum to one** per clip. AudioSet scores are independent
        sigmoids (a clip can be both "Rock music" and "Heavy metal"), not a distribution over the ten
        genres; dividing by their sum turns them into one so that the categorical cross-entropy of the
        results tables (``evaluate.prediction_metrics``) is defined. The ranking, and so the prediction,
        is unchanged; the loss is that of these renormalised scores, not a probability the network gave.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape != (len(tracks), len(GENRES)):
        raise ParameterError(f"scores must have shape ({len(tracks)}, {len(GENRES)}), got {scores.shape}")
    if not np.all(np.isfinite(scores)) or np.any(scores < 0) or np.any(scores.sum(axis=1) <= 0):
        raise ParameterError("scores must be finite, non-negative and not all zero in a row")
    probabilities = scores / scores.sum(axis=1, keepdims=True)
    frame = pd.DataFrame({"item_id": tracks["track_id"].to_numpy(), "track_id": tracks["track_id"].to_numpy(),
                          "genre": tracks["genre"].to_numpy(), "side": "test",
                          "predicted": [GENRES[i] for i in probabilities.argmax(axis=1)]})
    frame[[f"p_{g}" for g in GENRES]] = probabilities
    return frame


def zero_shot_summary(predictions: pd.DataFrame, *, data: str) -> dict:
    """A zero-shot evaluation in the shape of :func:`genrelib.evaluate.summarize_runs`' summaries, so that
    :func:`genrelib.evaluate.write_results` writes its rows beside the trained models'.

    Notebook: 03_vggish_features. CLI: ``genrelib evaluate --zero-shot``.

    One "run" (nothing is trained: no seed, split or epoch is drawn) over every track of the data: facts
    model :data:`ZERO_SHOT_MODEL`, protocol ``"zero-shot"``, backend ``"yamnet"``, augmentation ``"off"``,
    seeds ``"0"`` and run ``"zero-shot"`` (seed 0 is nominal: the per-run table keeps integer seeds, and
    the bootstrap interval is seeded with 0 as for every row); accuracy and loss with std 0 over that run;
    ``interval``, ``per_genre``, ``confusion`` as for trained runs. The loss is the cross-entropy of the
    genre scores renormalised to sum to one (:func:`zero_shot_predictions`).

    Leakage. AudioSet (YAMNet's training data) is YouTube clips labelled with its ontology's classes; GTZAN
    was collected from CDs, radio and microphone recordings around 2000-2001. No published audit of the
    overlap between the two is known to us. The same commercial songs may well be on YouTube, so a zero-shot
    score on GTZAN is not guaranteed free of training-set leakage; read it as an upper bound for unseen music.

    Parameters
    ----------
    predictions : pd.DataFrame
        :func:`zero_shot_predictions`.
    data : str
        The data label of the other rows, e.g. ``"gtzan_mini (100 tracks)"``.

    Returns
    -------
    dict
        ``facts``, ``per_run``, ``accuracy``, ``loss``, ``interval``, ``per_genre``, ``confusion``,
        ``predictions`` (with ``run``, ``seed``, ``fold``).
    """
    from . import evaluate
    from .statistics import accuracy_interval

    predictions = predictions.assign(run="zero-shot", seed=0, fold=None)
    metrics = evaluate.prediction_metrics(predictions)
    facts = {"model": ZERO_SHOT_MODEL, "data": str(data), "protocol": ZERO_SHOT_PROTOCOL, "backend": "yamnet",
             "augmentation": "off", "seeds": "0", "runs": 1}
    return {
        "facts": facts,
        "per_run": pd.DataFrame([{"run": "zero-shot", "seed": 0, "fold": None, **metrics}]),
        "accuracy": {"mean": metrics["accuracy"], "std": 0.0},
        "loss": {"mean": metrics["loss"], "std": 0.0},
        "interval": accuracy_interval(predictions),
        "per_genre": evaluate.per_genre_scores(predictions),
        "confusion": evaluate.confusion_matrix(predictions),
        "predictions": predictions,
    }


def evaluate_zero_shot(root: str | os.PathLike | None = None, *, results_dir: str | os.PathLike | None = None,
                       write: bool = True, progress: bool = True) -> dict:
    """Zero-shot YAMNet on every track of the data, written to the results tables.

    Notebook: 03_vggish_features. CLI: ``genrelib evaluate --zero-shot``.

    Embeds the data with the ``yamnet`` backend (cached; the same vectors the YAMNet CNN rows train on),
    scores the ten genre classes (:func:`zero_shot_genre_scores`) and, with ``write``, adds the summary's
    rows to ``results/`` (:func:`genrelib.evaluate.write_results`; rows of other groups stay as they are).

    Returns
    -------
    dict
        :func:`zero_shot_summary`'s summary.
    """
    from . import evaluate, pipeline
    from .embed import load_embeddings

    tracks, facts, backend = pipeline.load_tracks(root, backend="yamnet", progress=progress)
    scores = zero_shot_genre_scores(load_embeddings(tracks), backend=backend)
    summary = zero_shot_summary(zero_shot_predictions(tracks, scores),
                                data=evaluate._data_label({"data": facts}))
    if write:
        evaluate.write_results([summary], output_dir_=results_dir)
    return summary


def zero_shot_comparison(*, results_dir: str | os.PathLike | None = None, protocol: str = "kfold (5-fold)",
                         metric: str = "f1", zero_shot: dict | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Per-genre scores of zero-shot YAMNet beside the models trained on YAMNet embeddings.

    Notebook: 05_evaluation.

    Read from the results tables (``table2_per_genre.json``, backend ``yamnet``), nothing recomputed: zero-shot
    (all tracks), the clip-mean + logistic-regression linear probe and the paper's CNN without and with
    augmentation, each on ``protocol``'s test tracks pooled over its runs. Rows that are missing are left out.

    Parameters
    ----------
    zero_shot : dict, optional
        A :func:`zero_shot_summary` computed just now (e.g. by :func:`evaluate_zero_shot` with
        ``write=False``) to use instead of the table's zero-shot rows.

    Returns
    -------
    scores : pd.DataFrame [shape=(n_genres, n_models)]
        ``metric`` per genre (rows) and model (columns).
    described : list of str
        One line per column: model, protocol, augmentation, runs and data of its rows.
    """
    import json

    from . import evaluate
    from .storage import output_dir

    one_of(metric, ("precision", "recall", "f1"), "metric")
    folder = Path(results_dir) if results_dir else output_dir("results")
    rows = pd.DataFrame(json.loads((folder / "table2_per_genre.json").read_text())["rows"])
    rows = rows[rows["backend"] == "yamnet"]
    if zero_shot is None and ZERO_SHOT_MODEL not in set(rows["model"]):
        raise DataError(f"{folder / 'table2_per_genre.json'} has no zero-shot rows: run `genrelib evaluate "
                        f"--zero-shot` first")
    label = "zero-shot (AudioSet classes, all tracks)"
    scores, described = {}, []
    if zero_shot is not None:
        scores[label] = zero_shot["per_genre"][metric]
        described.append(f"{label}: computed now, {zero_shot['facts']['data']}")
    wanted = [(ZERO_SHOT_MODEL, ZERO_SHOT_PROTOCOL, "off", label),
              (evaluate.MODELS["baseline"], protocol, "off", "linear probe (clip-mean + LR)"),
              (evaluate.MODELS["cnn"], protocol, "off", "paper CNN, no augmentation"),
              (evaluate.MODELS["cnn"], protocol, "on", "paper CNN, augmentation")]
    for model, row_protocol, augmentation, name in wanted:
        group = rows[(rows["model"] == model) & (rows["protocol"] == row_protocol) &
                     (rows["augmentation"] == augmentation)]
        if len(group) and name not in scores:
            scores[name] = group.set_index("genre")[metric]
            described.append(f"{name}: {model}, {row_protocol}, augmentation {augmentation}, "
                              f"{int(group['runs'].iloc[0])} run(s), {group['data'].iloc[0]}")
    return pd.DataFrame(scores), described


def zero_shot_figure(*, results_dir: str | os.PathLike | None = None, figures_dir: str | os.PathLike | None = None,
                     protocol: str = "kfold (5-fold)", metric: str = "f1") -> list[Path]:
    """``figures/zero_shot_vs_trained.png``: :func:`zero_shot_comparison` as grouped bars.

    Notebook: 03_vggish_features. CLI: ``genrelib evaluate --zero-shot``.

    Returns
    -------
    list of Path
        The PNG and PDF (:func:`genrelib.plots.save_figure`, with a note in ``figures/README.md``).
    """
    import matplotlib.pyplot as plt

    from . import plots

    table, described = zero_shot_comparison(results_dir=results_dir, protocol=protocol, metric=metric)
    scores = {column: table[column].dropna() for column in table.columns}
    name = {"f1": "F1", "recall": "recall", "precision": "precision"}[metric]
    ax = plots.per_genre_bars(scores, metric=name, title=f"YAMNet embeddings: per-genre {name}, zero-shot vs "
                                                         f"trained ({protocol} test tracks pooled)")
    note = (f"per-genre {name} from results/table2_per_genre.json (backend yamnet): " + "; ".join(described) +
            ". Zero-shot: AudioSet genre classes, nothing trained; AudioSet/GTZAN overlap is unaudited.")
    paths = plots.save_figure(ax.figure, "zero_shot_vs_trained", output_dir=figures_dir, note=note)
    plt.close(ax.figure)
    return paths
