"""genrelib.evaluate: metrics against hand-computed values, the baseline on the same folds, results files, Figs 5-6."""

import json

import numpy as np
import pandas as pd
import pytest

from genrelib import evaluate, plots
from genrelib.config import GENRES
from genrelib.data import Split
from genrelib.errors import DataError, ParameterError

from tests.classifier_helpers import fake_tracks, predictions_frame, write_fake_run

# Four test clips: blues right, blues taken for jazz, jazz right, rock taken for blues.
TRUE = ["blues", "blues", "jazz", "rock"]
PREDICTED = ["blues", "jazz", "jazz", "blues"]


def test_accuracy_and_loss_by_hand():
    frame = predictions_frame(TRUE, PREDICTED, confidence=0.7)
    metrics = evaluate.prediction_metrics(frame)
    assert metrics["accuracy"] == 0.5 and metrics["n"] == 4
    # cross-entropy: right answers have p = 0.7, wrong ones p = 0.3 / 9 on the true genre
    assert metrics["loss"] == pytest.approx(-(2 * np.log(0.7) + 2 * np.log(0.3 / 9)) / 4)


def test_per_genre_scores_by_hand():
    scores = evaluate.per_genre_scores(predictions_frame(TRUE, PREDICTED))
    assert list(scores.index) == list(GENRES)
    # blues: predicted twice, right once -> precision 1/2; 2 true blues, 1 found -> recall 1/2
    assert scores.loc["blues", ["precision", "recall", "f1", "support"]].tolist() == [0.5, 0.5, 0.5, 2]
    # jazz: predicted twice, right once; 1 true jazz, found -> F1 = 2 * 0.5 * 1 / 1.5
    assert scores.loc["jazz", "precision"] == 0.5 and scores.loc["jazz", "recall"] == 1.0
    assert scores.loc["jazz", "f1"] == pytest.approx(2 / 3)
    assert scores.loc["rock"].tolist() == [0, 0, 0, 1]
    assert scores.loc["pop"].tolist() == [0, 0, 0, 0]  # absent genre: zeros, no warning-driven NaN


def test_confusion_matrix_by_hand():
    counts = evaluate.confusion_matrix(predictions_frame(TRUE, PREDICTED))
    expected = pd.DataFrame(0, index=list(GENRES), columns=list(GENRES))
    expected.loc["blues", "blues"] = expected.loc["blues", "jazz"] = 1
    expected.loc["jazz", "jazz"] = expected.loc["rock", "blues"] = 1
    np.testing.assert_array_equal(counts.to_numpy(), expected.to_numpy())
    assert counts.index.name == "true" and counts.columns.name == "predicted"


@pytest.mark.parametrize("frame, error", [
    (pd.DataFrame({"genre": ["blues"], "predicted": ["blues"]}), ParameterError),
    (predictions_frame([], []), ParameterError),
    (predictions_frame(["blues"], ["blues"]).assign(genre="polka"), DataError),
])
def test_bad_predictions_are_named(frame, error):
    with pytest.raises(error):
        evaluate.prediction_metrics(frame)


def test_clip_mean_baseline_learns_and_maps_columns():
    rng = np.random.default_rng(0)
    genres = ["blues", "jazz", "rock"]  # only three genres in training
    centres = {g: rng.normal(size=5) * 4 for g in genres}
    train = [centres[g] + rng.normal(size=(7, 5)) for g in genres for _ in range(6)]
    labels = [g for g in genres for _ in range(6)]
    test = [centres[g] + rng.normal(size=(3, 5)) for g in genres]
    probabilities = evaluate.clip_mean_baseline(train, labels, test)
    assert probabilities.shape == (3, 10)
    assert [GENRES[i] for i in probabilities.argmax(axis=1)] == genres
    np.testing.assert_allclose(probabilities.sum(axis=1), 1)
    assert probabilities[:, GENRES.index("pop")].max() == 0
    # the same as scikit-learn's pipeline on clip means, computed here independently
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit([t.mean(0) for t in train])
    reference = LogisticRegression(max_iter=5000).fit(scaler.transform([t.mean(0) for t in train]), labels)
    expected = reference.predict_proba(scaler.transform([t.mean(0) for t in test]))
    np.testing.assert_allclose(probabilities[:, [GENRES.index(g) for g in reference.classes_]], expected, atol=1e-6)


def test_add_baseline_uses_the_runs_folds(tmp_path):
    tracks = fake_tracks(tmp_path / "tracks", per_genre=4)
    ids = list(tracks["track_id"])
    split = Split(train=tuple(ids[0::4] + ids[1::4]), valid=tuple(ids[2::4]), test=tuple(ids[3::4]),
                  protocol="kfold", seed=0, fold=0)
    tested = tracks[tracks["track_id"].isin(split.valid + split.test)]
    predictions = predictions_frame(list(tested["genre"]), list(tested["genre"])).assign(
        track_id=list(tested["track_id"]), item_id=list(tested["track_id"]),
        side=["valid" if t in split.valid else "test" for t in tested["track_id"]])
    run = write_fake_run(tmp_path / "run", predictions, split=split)
    (path,) = evaluate.add_baseline([run], tracks)
    baseline = pd.read_csv(path)
    assert list(baseline["track_id"]) == list(predictions["track_id"])  # the CNN's validation and test tracks
    # learned from training + validation tracks: compare with the function called directly
    from genrelib.embed import load_embeddings

    by_id = tracks.set_index("track_id")
    learn = list(split.train + split.valid)
    expected = evaluate.clip_mean_baseline(load_embeddings(by_id.loc[learn]), by_id.loc[learn, "genre"],
                                           load_embeddings(by_id.loc[list(baseline["track_id"])]))
    np.testing.assert_allclose(baseline[[f"p_{g}" for g in GENRES]].to_numpy(), expected, atol=1e-6)
    assert evaluate.prediction_metrics(baseline[baseline["side"] == "test"])["accuracy"] == 1.0  # separable data


def group(tmp_path, name, accuracies, *, backend="fake", protocol="kfold"):
    """Runs whose test predictions have the given accuracies (10 clips each)."""
    runs = []
    for fold, accuracy in enumerate(accuracies):
        true = [GENRES[i] for i in range(10)]
        wrong = 10 - round(accuracy * 10)
        predicted = [GENRES[(i + 1) % 10] if i < wrong else g for i, g in enumerate(true)]
        runs.append(write_fake_run(tmp_path / name / f"seed0-fold{fold}", predictions_frame(true, predicted),
                                   fold=fold, backend=backend, protocol=protocol))
    return runs


def test_summary_mean_std_and_pooled_scores(tmp_path):
    runs = group(tmp_path, "g", [0.8, 0.9, 1.0])
    summary = evaluate.summarize_runs(runs)
    assert summary["accuracy"]["mean"] == pytest.approx(0.9)
    assert summary["accuracy"]["std"] == pytest.approx(np.std([0.8, 0.9, 1.0]))
    assert summary["facts"] == {"model": "paper CNN", "data": "fake (100 tracks)", "protocol": "kfold (3-fold)",
                                "backend": "fake", "augmentation": "on", "seeds": "0", "runs": 3}
    assert summary["confusion"].to_numpy().sum() == 30 and np.trace(summary["confusion"].to_numpy()) == 27
    assert summary["per_genre"]["support"].sum() == 30
    with pytest.raises(ParameterError, match="different groups"):
        evaluate.summarize_runs(runs + group(tmp_path, "h", [1.0], backend="other"))
    with pytest.raises(DataError, match="baseline.csv"):
        evaluate.summarize_runs(runs, model="baseline")


def test_results_files_keep_the_paper_apart_and_merge_groups(tmp_path):
    out = tmp_path / "results"
    first = evaluate.summarize_runs(group(tmp_path, "a", [0.5, 0.7]))
    evaluate.write_results([first], output_dir_=out)
    second = evaluate.summarize_runs(group(tmp_path, "b", [0.9], protocol="paper"))
    evaluate.write_results([second], output_dir_=out)
    rerun = evaluate.summarize_runs(group(tmp_path, "c", [1.0, 1.0]))  # same group as "a": replaces it
    evaluate.write_results([rerun], output_dir_=out)
    rows = json.loads((out / "table3_accuracy.json").read_text())["rows"]
    assert [(r["protocol"], r["accuracy_mean"]) for r in rows] == [("paper", 0.9), ("kfold (2-fold)", 1.0)]
    assert all(r["paper_accuracy"] == 0.7236 and r["paper_loss"] == 0.7544 for r in rows)
    table2 = json.loads((out / "table2_per_genre.json").read_text())["rows"]
    assert len(table2) == 20 and {r["genre"]: r["paper_f1"] for r in table2}["rock"] == 0.53
    markdown = (out / "table3_accuracy.md").read_text()
    assert "| paper CNN | fake (100 tracks) | kfold (2-fold) | fake | on | 0 | 2 | 1.0000 ± 0.0000 |" in markdown
    assert "| 0.7236 | 0.7544 |" in markdown
    table2_md = (out / "table2_per_genre.md").read_text()
    # group "b": its one mistake is a blues clip taken for classical
    assert "| blues | 0.00 | 0.00 | 0.00 | 1 | 0.63 |\n| classical | 0.50 | 1.00 | 0.67 | 1 | 0.92 |" in table2_md
    assert len(json.loads((out / "per_run.json").read_text())["rows"]) == 3


def test_rerunning_one_backend_leaves_the_files_byte_identical(tmp_path):
    """make demo reruns musicnn-msd's rows after make yamnet-results wrote YAMNet's: same numbers, same files."""
    out = tmp_path / "results"
    groups = {backend: evaluate.summarize_runs(group(tmp_path, backend, [0.5, 0.7], backend=backend))
              for backend in ("musicnn-msd", "yamnet")}
    evaluate.write_results([groups["musicnn-msd"]], output_dir_=out)
    evaluate.write_results([groups["yamnet"]], output_dir_=out)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    evaluate.write_results([groups["musicnn-msd"]], output_dir_=out)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    rows = json.loads((out / "table3_accuracy.json").read_text())["rows"]
    assert [r["backend"] for r in rows] == ["musicnn-msd", "yamnet"]


def test_baseline_rows_have_no_paper_numbers(tmp_path):
    runs = group(tmp_path, "g", [1.0])
    for run in runs:
        (run / "baseline.csv").write_text((run / "predictions.csv").read_text())
    table = evaluate.table3([evaluate.summarize_runs(runs, model="baseline")])
    assert table.loc[0, "model"] == "clip-mean + logistic regression" and table.loc[0, "augmentation"] == "off"
    assert pd.isna(table.loc[0, "paper_accuracy"])


def test_misclassified_lists_confident_mistakes_with_paths(tmp_path):
    tracks = fake_tracks(tmp_path / "tracks", per_genre=1)
    summary = {"predictions": predictions_frame(TRUE, PREDICTED).assign(
        track_id=["blues.00000", "jazz.00000", "rock.00000", "pop.00000"], run="r")}
    summary["predictions"].loc[3, "p_blues"] = 0.95
    wrong = evaluate.misclassified(summary, tracks, limit=5)
    assert list(wrong["track_id"]) == ["pop.00000", "jazz.00000"]  # most confident first
    assert wrong.loc[0, "confidence"] == 0.95 and wrong.loc[0, "path"].endswith("pop.00000.wav")


def test_fig6_shows_counts_and_row_shares():
    counts = evaluate.confusion_matrix(predictions_frame(TRUE, PREDICTED))
    ax = plots.fig6_confusion_matrix(counts)
    labels = [t.get_text() for t in ax.texts]
    assert len(labels) == 100
    assert labels[GENRES.index("blues") * 10 + GENRES.index("jazz")] == "1\n0.50"
    assert labels[GENRES.index("pop") * 10] == "0\n0.00"  # an empty row stays 0, not NaN


def test_fig5_draws_train_and_validation_means():
    histories = [pd.DataFrame({"epoch": [1, 2], "accuracy": [0.1, 0.3], "loss": [2, 1],
                               "val_accuracy": [0.2, 0.4], "val_loss": [3, 2]}),
                 pd.DataFrame({"epoch": [1, 2], "accuracy": [0.3, 0.5], "loss": [4, 3],
                               "val_accuracy": [0.2, 0.6], "val_loss": [3, 1]})]
    fig = plots.fig5_training_curves(histories)
    accuracy_ax, loss_ax = fig.axes[:2]
    train_line, valid_line = accuracy_ax.get_lines()
    np.testing.assert_allclose(train_line.get_ydata(), [0.2, 0.4])
    np.testing.assert_allclose(valid_line.get_ydata(), [0.2, 0.5])
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(), [3, 2])
    assert "2 runs" in fig._suptitle.get_text()
    with pytest.raises(ParameterError):
        plots.fig5_training_curves([])


def test_table3_display_joins_mean_and_std_and_keeps_the_paper_apart(tmp_path):
    runs = group(tmp_path, "g", [1.0])
    for run in runs:
        (run / "baseline.csv").write_text((run / "predictions.csv").read_text())
    summaries = [evaluate.summarize_runs(runs), evaluate.summarize_runs(runs, model="baseline")]
    full, shown = evaluate.table3(summaries), evaluate.table3_display(summaries)
    assert list(shown.columns) == ["model", "protocol", "backend", "augmentation", "runs", "accuracy", "loss",
                                   "paper accuracy", "paper loss"]
    assert shown.loc[0, "accuracy"] == f"{full.loc[0, 'accuracy_mean']:.3f} ± {full.loc[0, 'accuracy_std']:.3f}"
    assert (shown.loc[0, "paper accuracy"], shown.loc[0, "paper loss"]) == ("0.7236", "0.7544")
    assert shown.loc[1, "paper accuracy"] == "-" and shown.loc[1, "paper loss"] == "-"
