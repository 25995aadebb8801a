"""Evaluation: the paper's Tables 2 and 3, Fig 6's confusion matrix, the clip-mean baseline, results files.

Notebook: 05_evaluation.

Everything here reads what :mod:`genrelib.train` stored (``predictions.csv`` of each run directory), so a
figure or table never needs the network again. Metrics come from scikit-learn: accuracy, categorical
cross-entropy (``log_loss`` of the stored probabilities, the "loss" of Table 3), per-genre precision,
recall and F1 (Table 2), the confusion matrix (Fig 6).

A *group* is the set of runs of one protocol (its folds and seeds) on one data set and backend; its
accuracy and loss are reported as mean and standard deviation over the runs, per-genre scores and the
confusion matrix from all its test predictions pooled. The paper's numbers sit in their own columns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .config import GENRES
from .errors import DataError, ParameterError
from .statistics import accuracy_interval, paired_comparison
from .storage import atomic_write_bytes, atomic_write_csv, atomic_write_json, output_dir

__all__ = [
    "PAPER_ACCURACY",
    "PAPER_LOSS",
    "PAPER_F1",
    "prediction_metrics",
    "per_genre_scores",
    "prediction_labels",
    "confusion_matrix",
    "clip_mean_baseline",
    "add_baseline",
    "table3_display",
    "summarize_runs",
    "table3",
    "table2",
    "write_results",
    "misclassified",
    "intervals_table",
    "baseline_comparisons",
]

#: The paper's Table 3 (test accuracy and loss of its CNN on VGGish embeddings of full GTZAN).
PAPER_ACCURACY = 0.7236
PAPER_LOSS = 0.7544
#: The paper's Table 2, F1 per genre.
PAPER_F1 = {"blues": 0.63, "classical": 0.92, "country": 0.65, "disco": 0.61, "hiphop": 0.87,
            "jazz": 0.87, "metal": 0.81, "pop": 0.59, "reggae": 0.68, "rock": 0.53}

def prediction_labels(predictions: pd.DataFrame) -> tuple[str, ...]:
    """The labels a table of predictions is over, in the network's output order: its ``p_<label>`` columns
    (GTZAN's ten genres, or a collection's labels, as the run stored them)."""
    labels = tuple(column[2:] for column in predictions.columns if str(column).startswith("p_"))
    if not labels:
        raise ParameterError("predictions have no p_<label> columns (from a run's predictions.csv)")
    return labels
#: Columns that identify a row of the results tables (a rerun replaces the row with the same key).
_KEY = ["model", "data", "protocol", "backend", "augmentation"]
MODELS = {"cnn": "paper CNN", "baseline": "clip-mean + logistic regression"}


# ------------------------------------------------------------------------------------------- metrics

def _check_predictions(predictions: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    missing = {"genre", "predicted"} - set(predictions.columns)
    if missing:
        raise ParameterError(f"predictions lack column(s) {', '.join(sorted(missing))} (from a run's predictions.csv)")
    labels = prediction_labels(predictions)
    if predictions.empty:
        raise ParameterError("predictions are empty: nothing to evaluate")
    unknown = sorted(set(predictions["genre"]) - set(labels))
    if unknown:
        raise DataError(f"unknown genre(s) in predictions: {', '.join(unknown)}")
    return predictions, labels


def prediction_metrics(predictions: pd.DataFrame) -> dict[str, float]:
    """Accuracy and loss of a table of predictions (Table 3's two numbers).

    Notebook: 05_evaluation.

    Parameters
    ----------
    predictions : pd.DataFrame
        ``genre`` (true), ``predicted`` and ``p_<label>`` for every label (GTZAN's genres or a collection's:
        :func:`prediction_labels`), one row per clip.

    Returns
    -------
    dict
        ``accuracy`` in [0, 1]; ``loss``: mean categorical cross-entropy [nats] of the probabilities
        (probabilities are clipped by scikit-learn, so a confident mistake costs a large but finite loss);
        ``n``: number of clips.
    """
    from sklearn.metrics import accuracy_score, log_loss

    predictions, labels = _check_predictions(predictions)
    probabilities = predictions[[f"p_{label}" for label in labels]].to_numpy(dtype=float, copy=True)
    # Stored as float32 text, rows sum to 1 only within ~1e-7; renormalise so log_loss sees probabilities.
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return {
        "accuracy": float(accuracy_score(predictions["genre"], predictions["predicted"])),
        "loss": float(log_loss(predictions["genre"], probabilities, labels=list(labels))),
        "n": int(len(predictions)),
    }


def per_genre_scores(predictions: pd.DataFrame) -> pd.DataFrame:
    """Table 2: precision, recall, F1 and support per genre (scikit-learn; 0 where undefined).

    Notebook: 05_evaluation.

    Returns
    -------
    pd.DataFrame
        Indexed by genre (in the predictions' label order, :data:`GENRES` for GTZAN): ``precision``,
        ``recall``, ``f1``, ``support``.
    """
    from sklearn.metrics import precision_recall_fscore_support

    predictions, labels = _check_predictions(predictions)
    precision, recall, f1, support = precision_recall_fscore_support(
        predictions["genre"], predictions["predicted"], labels=list(labels), zero_division=0)
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support},
                        index=pd.Index(labels, name="genre"))


def confusion_matrix(predictions: pd.DataFrame) -> pd.DataFrame:
    """Fig 6's counts: rows are true genres, columns predicted genres (scikit-learn).

    Notebook: 05_evaluation.

    Returns
    -------
    pd.DataFrame [shape=(n_labels, n_labels)], int
        Row-normalise with ``matrix.div(matrix.sum(axis=1), axis=0)``.
    """
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    predictions, labels = _check_predictions(predictions)
    counts = sk_confusion_matrix(predictions["genre"], predictions["predicted"], labels=list(labels))
    return pd.DataFrame(counts, index=pd.Index(labels, name="true"), columns=pd.Index(labels, name="predicted"))


# ------------------------------------------------------------------------------------------ baseline

def clip_mean_baseline(train_embeddings: list[np.ndarray], train_genres,
                       test_embeddings: list[np.ndarray], *, labels=GENRES) -> np.ndarray:
    """The clip-mean baseline: average each clip's patches, standardise, logistic regression.

    Notebook: 05_evaluation.

    Parameters
    ----------
    train_embeddings, test_embeddings : list of np.ndarray [shape=(n_patches_i, d)]
    train_genres : sequence of str
        Genre names of the training clips.

    Returns
    -------
    labels : sequence of str
        The output columns, in order (default GTZAN's ten :data:`GENRES`).

    Returns
    -------
    np.ndarray [shape=(n_test, len(labels))]
        Probabilities in ``labels`` order (0 for a label absent from training).

    Notes
    -----
    :func:`genrelib.embed.clip_means` and :func:`genrelib.baselines.linear_probe` (scikit-learn's
    ``StandardScaler`` + ``LogisticRegression``, L2, C = 1, lbfgs: deterministic), the same recipe as the
    backend comparison of notebook 03, here fitted on a run's own folds.
    """
    from .baselines import linear_probe
    from .embed import clip_means

    if not train_embeddings or not test_embeddings:
        raise ParameterError("the baseline needs at least one training and one test clip")
    classifier = linear_probe().fit(clip_means(train_embeddings), list(train_genres))
    labels = list(labels)
    probabilities = np.zeros((len(test_embeddings), len(labels)))
    columns = [labels.index(g) for g in classifier.classes_]
    probabilities[:, columns] = classifier.predict_proba(clip_means(test_embeddings))
    return probabilities


def add_baseline(run_dirs: Iterable[str | os.PathLike], tracks: pd.DataFrame, *, overwrite: bool = False) -> list[Path]:
    """Fit the clip-mean baseline on exactly the folds of the given runs; write ``baseline.csv`` beside
    each run's ``predictions.csv``.

    Notebook: 05_evaluation.

    The baseline learns from the run's training and validation tracks (originals only: it has no epochs
    to select, so validation tracks are training data for it) and predicts the same validation and test
    tracks as the CNN. ``tracks`` is the embedded index with the run's backend (its meta names it).

    Returns
    -------
    list of Path
        The ``baseline.csv`` files.
    """
    from .embed import load_embeddings
    from .train import load_run

    by_id = tracks.set_index("track_id")
    written = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        target = run["run_dir"] / "baseline.csv"
        if target.exists() and not overwrite:
            written.append(target)
            continue
        split = run["split"]
        learn = [*split.train, *split.valid]
        missing = sorted((set(learn) | set(run["predictions"]["track_id"])) - set(by_id.index))
        if missing:
            raise DataError(f"{run_dir}: tracks missing from the embedded index: {', '.join(missing[:5])}")
        tested = run["predictions"][["item_id", "track_id", "genre", "side"]].copy()
        labels = tuple(run["meta"].get("genres") or GENRES)  # the run's labels, in its network's order
        probabilities = clip_mean_baseline(load_embeddings(by_id.loc[learn].reset_index()), by_id.loc[learn, "genre"],
                                           load_embeddings(by_id.loc[tested["track_id"]].reset_index()),
                                           labels=labels)
        tested["predicted"] = [labels[i] for i in probabilities.argmax(axis=1)]
        tested[[f"p_{label}" for label in labels]] = probabilities
        atomic_write_csv(target, tested)
        written.append(target)
    return written


# ---------------------------------------------------------------------------------------- summaries

def _data_label(meta: dict) -> str:
    data = meta.get("data", {})
    name = data.get("name") or Path(str(data.get("root", "unknown data"))).name
    if not data.get("n_tracks"):
        return name
    skipped = f"; skipped: {data['skipped']}" if data.get("skipped") else ""
    return f"{name} ({data['n_tracks']} tracks{skipped})"


def summarize_runs(run_dirs: Iterable[str | os.PathLike], *, model: str = "cnn", side: str = "test") -> dict[str, Any]:
    """Metrics of a group of runs (one protocol's folds and seeds), for one model.

    Notebook: 05_evaluation.

    Parameters
    ----------
    run_dirs : iterable of path
        Complete run directories of one protocol, data set and backend.
    model : {"cnn", "baseline"}
        The paper CNN (``predictions.csv``) or the clip-mean baseline (``baseline.csv``, see :func:`add_baseline`).
    side : {"test", "valid"}

    Returns
    -------
    dict
        ``facts`` (model, data, protocol, backend, augmentation, seeds, runs), ``per_run`` (a DataFrame:
        run, seed, fold, accuracy, loss, n), ``accuracy`` / ``loss`` (mean and std over runs),
        ``interval`` (accuracy over test tracks with its 95 % bootstrap interval,
        :func:`genrelib.statistics.accuracy_interval`), ``per_genre`` (Table 2 of the pooled predictions),
        ``confusion`` (pooled counts), ``predictions`` (pooled, with ``run``, ``seed`` and ``fold``).
    """
    from .train import load_run

    if model not in MODELS:
        raise ParameterError(f"model={model!r} must be one of {', '.join(map(repr, MODELS))}")
    if side not in ("test", "valid"):
        raise ParameterError(f"side={side!r} must be 'test' or 'valid'")
    runs = [load_run(run_dir) for run_dir in run_dirs]
    if not runs:
        raise ParameterError("no runs to summarise")
    facts = _group_facts(runs, model)
    rows, pooled = [], []
    for run in runs:
        path = run["run_dir"] / ("predictions.csv" if model == "cnn" else "baseline.csv")
        if not path.exists():
            raise DataError(f"{path}: missing (run genrelib.evaluate.add_baseline first)")
        predictions = pd.read_csv(path)
        predictions = predictions[predictions["side"] == side].assign(
            run=run["run_dir"].name, seed=run["meta"]["seed"], fold=run["meta"]["fold"])
        rows.append({"run": run["run_dir"].name, "seed": run["meta"]["seed"], "fold": run["meta"]["fold"],
                     **prediction_metrics(predictions)})
        pooled.append(predictions)
    per_run = pd.DataFrame(rows)
    pooled = pd.concat(pooled, ignore_index=True)
    labels = prediction_labels(pooled)
    return {
        "facts": facts,
        "labels": labels,
        "per_run": per_run,
        # Population std (ddof=0) over runs, as genrelib.baselines reports its folds.
        "accuracy": {"mean": float(per_run["accuracy"].mean()), "std": float(per_run["accuracy"].std(ddof=0))},
        "loss": {"mean": float(per_run["loss"].mean()), "std": float(per_run["loss"].std(ddof=0))},
        "interval": accuracy_interval(pooled),
        "per_genre": per_genre_scores(pooled),
        "confusion": confusion_matrix(pooled),
        "predictions": pooled,
    }


def _group_facts(runs: list[dict], model: str) -> dict[str, Any]:
    metas = [run["meta"] for run in runs]
    described = {
        "data": {_data_label(m) for m in metas},
        "protocol": {m["protocol"] for m in metas},
        "backend": {m["backend"]["name"] for m in metas},
        "augmentation": {("on" if m["augmented"] else "off") for m in metas},
    }
    mixed = {name: sorted(values) for name, values in described.items() if len(values) > 1}
    if mixed:
        raise ParameterError(f"runs of different groups cannot be summarised together: {mixed}")
    folds = sorted({m["fold"] for m in metas if m["fold"] is not None})
    protocol = described["protocol"].pop()
    if protocol in ("kfold", "artist"):
        protocol = f"{protocol} ({len(folds)}-fold)"
    seeds = sorted({m["seed"] for m in metas})
    return {
        "model": MODELS[model],
        "data": described["data"].pop(),
        "protocol": protocol,
        "backend": described["backend"].pop(),
        # The baseline never sees augmented clips; the CNN's setting is what the row says.
        "augmentation": described["augmentation"].pop() if model == "cnn" else "off",
        "seeds": ",".join(map(str, seeds)),
        "runs": len(runs),
    }


# -------------------------------------------------------------------------------------------- tables

def table3(summaries: Iterable[dict]) -> pd.DataFrame:
    """Table 3 rows: accuracy and loss (mean, std over runs) beside the paper's, per model and group.

    The paper's accuracy and loss appear only on rows of the paper CNN, in their own columns.
    """
    rows = []
    for summary in summaries:
        is_cnn = _beside_paper(summary)
        rows.append({**summary["facts"],
                     "accuracy_mean": summary["accuracy"]["mean"], "accuracy_std": summary["accuracy"]["std"],
                     "loss_mean": summary["loss"]["mean"], "loss_std": summary["loss"]["std"],
                     "paper_accuracy": PAPER_ACCURACY if is_cnn else None,
                     "paper_loss": PAPER_LOSS if is_cnn else None})
    return pd.DataFrame(rows)


def table3_display(summaries: Iterable[dict], *, digits: int = 3) -> pd.DataFrame:
    """:func:`table3` narrowed for reading in a notebook: mean ± std as one text column each, the paper's beside.

    Notebook: 05_evaluation. Columns ``model``, ``protocol``, ``backend``, ``augmentation``, ``runs``,
    ``accuracy``, ``loss`` (ours, "mean ± std"), ``paper accuracy``, ``paper loss`` (as the paper prints them, "-"
    where it has none); nine short columns fit a 1400 px wide JupyterLab without a horizontal scroll bar.
    """
    table = table3(summaries)

    def text(mean, std=None):
        if mean is None or pd.isna(mean):
            return "-"
        return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"

    return pd.DataFrame({
        **{column: table[column] for column in ("model", "protocol", "backend", "augmentation", "runs")},
        "accuracy": [text(m, s) for m, s in zip(table["accuracy_mean"], table["accuracy_std"])],
        "loss": [text(m, s) for m, s in zip(table["loss_mean"], table["loss_std"])],
        # the paper's numbers as it prints them (0.7236, 0.7544), not rounded to ours
        "paper accuracy": ["-" if m is None or pd.isna(m) else f"{m:g}" for m in table["paper_accuracy"]],
        "paper loss": ["-" if m is None or pd.isna(m) else f"{m:g}" for m in table["paper_loss"]],
    })


def _beside_paper(summary: dict) -> bool:
    """Whether the paper's numbers belong beside a summary: the paper CNN on GTZAN's ten genres (never on
    a collection of other labels, whose task the paper did not measure)."""
    return summary["facts"]["model"] == MODELS["cnn"] and tuple(summary.get("labels", GENRES)) == GENRES


def table2(summaries: Iterable[dict]) -> pd.DataFrame:
    """Table 2 rows: per-genre precision, recall, F1 and support of the pooled test predictions, and the
    paper's F1 in its own column (paper CNN rows only)."""
    frames = []
    for summary in summaries:
        scores = summary["per_genre"].reset_index()
        is_cnn = _beside_paper(summary)
        scores["paper_f1"] = scores["genre"].map(PAPER_F1) if is_cnn else None
        frames.append(scores.assign(**{k: v for k, v in summary["facts"].items()}))
    table = pd.concat(frames, ignore_index=True)
    first = list(summary["facts"])
    return table[first + [c for c in table.columns if c not in first]]


def _merge(path: Path, new: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Rows already in ``path`` (JSON) whose key is not in ``new``, then ``new``: reruns replace, other
    protocols' rows stay. Sorted by protocol, then model, augmentation and backend (stable: genres and runs keep
    their order), so a rerun of one backend's rows leaves the file as it was when its numbers are the same."""
    merged = new
    if path.exists():
        old = pd.DataFrame(json.loads(path.read_text())["rows"])
        if not old.empty:
            stale = old[key].apply(tuple, axis=1).isin(set(new[key].apply(tuple, axis=1)))
            merged = pd.concat([old[~stale], new], ignore_index=True)
    return merged.sort_values(["protocol", "model", "augmentation", "backend"], ascending=[False, False, True, True],
                              kind="stable").reset_index(drop=True)


def _fmt(mean, std=None) -> str:
    if mean is None or (isinstance(mean, float) and np.isnan(mean)):
        return "-"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def _markdown(header: list[str], rows: Iterable[list]) -> str:
    """A Markdown table: the header, its rule, one line per row of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, cells)) + " |" for cells in rows]
    return "\n".join(lines)


_FACTS = ["model", "data", "protocol", "backend", "augmentation", "seeds"]


def _table3_markdown(table: pd.DataFrame) -> str:
    return _markdown(_FACTS + ["runs", "accuracy (ours)", "loss (ours)", "accuracy (paper)", "loss (paper)"],
                     ([*(getattr(row, f) for f in _FACTS), row.runs, _fmt(row.accuracy_mean, row.accuracy_std),
                       _fmt(row.loss_mean, row.loss_std), _fmt(row.paper_accuracy), _fmt(row.paper_loss)]
                      for row in table.itertuples()))


def _table2_markdown(table: pd.DataFrame) -> str:
    parts = []
    for key, group in table.groupby(_KEY + ["seeds"], sort=False):
        facts = dict(zip(_KEY + ["seeds"], key))
        parts.append(f"### {facts['model']} - {facts['data']}, {facts['protocol']}, {facts['backend']}, "
                     f"augmentation {facts['augmentation']}, seeds {facts['seeds']}\n")
        parts.append("| genre | precision | recall | F1 (ours) | support | F1 (paper) |\n|---|---|---|---|---|---|")
        parts.extend(f"| {r.genre} | {r.precision:.2f} | {r.recall:.2f} | {r.f1:.2f} | {int(r.support)} | "
                     f"{'-' if r.paper_f1 is None or pd.isna(r.paper_f1) else f'{r.paper_f1:.2f}'} |"
                     for r in group.itertuples())
        parts.append("")
    return "\n".join(parts)


_NOTE = ("Ours: mean ± standard deviation (ddof=0) over runs (folds x seeds) of test-track accuracy and "
         "categorical cross-entropy (nats). Per-genre scores pool every run's test predictions. Paper: "
         "'Leveraging Spectrogram Features and CNNs for Music Genre Classification', Tables 2-3 (full GTZAN, "
         "VGGish embeddings, split not stated) - a different data size and often a different backend, so the "
         "columns are side by side, never one number.")


def write_results(summaries: Iterable[dict], *, output_dir_: str | os.PathLike | None = None,
                  name: str = "results") -> list[Path]:
    """Write Tables 3 and 2 and the per-run numbers as JSON and Markdown; rows of other groups already in
    the files are kept, rows of the same group are replaced.

    Notebook: 05_evaluation.

    Files (in ``output_dir_``, default ``output_dir("results")``): ``table3_accuracy.{json,md}``,
    ``table2_per_genre.{json,md}``, ``per_run.{json,md}``, ``intervals.{json,md}`` and, when a group's CNN and
    baseline are both given, ``paired.{json,md}``. Returns their paths.
    """
    summaries = list(summaries)
    if not summaries:
        raise ParameterError("no summaries to write")
    folder = Path(output_dir_) if output_dir_ else output_dir("results")
    folder.mkdir(parents=True, exist_ok=True)
    per_run = pd.concat([s["per_run"].assign(**s["facts"]) for s in summaries], ignore_index=True)
    tables = {
        "table3_accuracy": (table3(summaries), _KEY, _table3_markdown,
                            "Table 3 - test accuracy and loss"),
        "table2_per_genre": (table2(summaries), _KEY + ["genre"], _table2_markdown,
                             "Table 2 - per-genre precision, recall and F1 on test tracks"),
        "per_run": (per_run, _KEY + ["run"], _per_run_markdown, "Per run (fold x seed) test results"),
        "intervals": (intervals_table(summaries), _KEY, _intervals_markdown,
                      "Test accuracy over test tracks, with 95 % bootstrap intervals"),
    }
    paired = baseline_comparisons(summaries)
    if not paired.empty:
        tables["paired"] = (paired, _KEY + ["versus"], _paired_markdown,
                            "Paired comparisons on the same test tracks")
    paths = []
    for stem, (table, key, to_markdown, title) in tables.items():
        merged = _merge(folder / f"{stem}.json", table, key)
        rows = json.loads(merged.to_json(orient="records"))
        note = _NOTES.get(stem, _NOTE)
        atomic_write_json(folder / f"{stem}.json", {"title": title, "note": note, "rows": rows})
        atomic_write_bytes(folder / f"{stem}.md", f"# {title}\n\n{note}\n\n{to_markdown(merged)}\n".encode())
        paths += [folder / f"{stem}.json", folder / f"{stem}.md"]
    return paths


_NOTES = {
    "intervals": ("Each test track's correctness is averaged over the runs that tested it (seeds test the same "
                  "tracks again, so they are not new evidence); the interval resamples test tracks (percentile "
                  "bootstrap, 2000 resamples, seed 0). It is the uncertainty of the accuracy over tracks of this "
                  "kind, unlike the ± std over runs of Table 3, which is the spread between folds."),
    "paired": ("Two classifiers on the same test tracks (same splits and seeds): accuracy of each on the tracks "
               "both saw, the difference with its 95 % bootstrap interval over tracks, the tracks on which each "
               "is right more often, and the two-sided exact McNemar (sign) test over those tracks."),
}


def intervals_table(summaries: Iterable[dict]) -> pd.DataFrame:
    """One row per summary: its facts and :func:`genrelib.statistics.accuracy_interval` of its predictions."""
    return pd.DataFrame([{**s["facts"], **{k: v for k, v in s["interval"].items() if k != "method"}}
                         for s in summaries])


def baseline_comparisons(summaries: Iterable[dict]) -> pd.DataFrame:
    """Paired comparison of each CNN summary with the baseline summary of the same runs, when both are given."""
    summaries = list(summaries)
    rows = []
    for cnn in (s for s in summaries if s["facts"]["model"] == MODELS["cnn"]):
        runs = set(cnn["per_run"]["run"])
        for baseline in (s for s in summaries if s["facts"]["model"] == MODELS["baseline"]):
            if set(baseline["per_run"]["run"]) == runs:
                rows.append({**cnn["facts"], "versus": MODELS["baseline"],
                             **paired_comparison(cnn["predictions"], baseline["predictions"])})
    return pd.DataFrame(rows)


def _intervals_markdown(table: pd.DataFrame) -> str:
    return _markdown(_FACTS + ["runs", "test tracks", "accuracy over tracks", "95 % interval"],
                     ([*(getattr(row, f) for f in _FACTS), row.runs, row.n_tracks, f"{row.accuracy:.4f}",
                       f"{row.low:.4f} - {row.high:.4f}"] for row in table.itertuples()))


def _paired_markdown(table: pd.DataFrame) -> str:
    return _markdown(["model", "versus", *_FACTS[1:], "test tracks", "model's accuracy", "versus' accuracy",
                      "difference (95 % interval)", "better / worse tracks", "McNemar p"],
                     ([row.model, row.versus, *(getattr(row, f) for f in _FACTS[1:]), row.n_tracks, f"{row.first:.4f}",
                       f"{row.second:.4f}", f"{row.difference:+.4f} ({row.low:+.4f} to {row.high:+.4f})",
                       f"{row.first_better} / {row.second_better}",
                       # the JSON keeps 10 decimals: a smaller p-value is stored as 0
                       f"{row.p_value:.3g}" if row.p_value > 0 else "< 1e-10"]
                      for row in table.itertuples()))


def _per_run_markdown(table: pd.DataFrame) -> str:
    columns = _KEY + ["run", "seed", "fold", "n", "accuracy", "loss"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    whole = {"seed", "fold", "n"}  # a merge with rows lacking a fold makes these float: print them as counts
    for row in table[columns].itertuples(index=False):
        cells = ["-" if v is None or (isinstance(v, float) and np.isnan(v)) else
                 str(int(v)) if name in whole else f"{v:.4f}" if isinstance(v, float) else str(v)
                 for name, v in zip(columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def misclassified(summary: dict, tracks: pd.DataFrame, *, limit: int = 5) -> pd.DataFrame:
    """The most confident mistakes of a summary's pooled predictions, with their audio paths.

    Notebook: 05_evaluation (to listen to them).

    Returns
    -------
    pd.DataFrame
        ``track_id``, ``genre``, ``predicted``, ``confidence`` (probability of the predicted genre),
        ``run``, ``path``; at most ``limit`` rows, most confident first.
    """
    predictions = summary["predictions"]
    wrong = predictions[predictions["genre"] != predictions["predicted"]].copy()
    wrong["confidence"] = [row[f"p_{row['predicted']}"] for _, row in wrong.iterrows()]
    wrong = wrong.sort_values("confidence", ascending=False).drop_duplicates("track_id").head(limit)
    paths = tracks.set_index("track_id")["path"]
    wrong["path"] = wrong["track_id"].map(paths)
    return wrong[["track_id", "genre", "predicted", "confidence", "run", "path"]].reset_index(drop=True)
