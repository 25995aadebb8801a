"""Zero-shot YAMNet through the results tables: scores from embeddings, predictions, the summary (checked
against scikit-learn on hand-made scores), merging into committed tables, the figure and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrelib import GENRES, ParameterError, evaluate, predict

ROOT = Path(__file__).resolve().parents[1]


def _hand_made(rng, n_per_genre: int = 4):
    """Tracks and sigmoid-like scores: mostly right, a few confusions, rows that do not sum to one."""
    genres = [g for g in GENRES for _ in range(n_per_genre)]
    tracks = pd.DataFrame({"track_id": [f"{g}.{i:05d}" for i, g in enumerate(genres)], "genre": genres})
    scores = rng.uniform(0.01, 0.3, (len(genres), len(GENRES)))
    for row, genre in enumerate(genres):
        scores[row, GENRES.index(genre)] += 0.5
    scores[0, GENRES.index("jazz")] = 0.99  # a blues track called jazz
    scores[5, GENRES.index("rock")] = 0.97  # a classical track called rock
    scores[-1, GENRES.index("metal")] = 0.98  # a rock track called metal
    return tracks, scores


def test_predictions_normalise_the_scores_and_keep_the_ranking(rng):
    tracks, scores = _hand_made(rng)
    frame = predict.zero_shot_predictions(tracks, scores)
    probabilities = frame[[f"p_{g}" for g in GENRES]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probabilities, scores / scores.sum(axis=1, keepdims=True))
    assert list(frame["predicted"]) == [GENRES[i] for i in scores.argmax(axis=1)]
    assert set(frame["side"]) == {"test"} and list(frame["track_id"]) == list(tracks["track_id"])


@pytest.mark.parametrize("bad", ["shape", "negative", "zero", "nan"])
def test_predictions_refuse_bad_scores(rng, bad):
    tracks, scores = _hand_made(rng)
    if bad == "shape":
        scores = scores[:, :9]
    elif bad == "negative":
        scores[3, 2] = -0.1
    elif bad == "zero":
        scores[3] = 0.0
    else:
        scores[3, 2] = np.nan
    with pytest.raises(ParameterError):
        predict.zero_shot_predictions(tracks, scores)


def test_summary_matches_sklearn(rng):
    from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support

    tracks, scores = _hand_made(rng)
    summary = predict.zero_shot_summary(predict.zero_shot_predictions(tracks, scores), data="hand-made (40 tracks)")
    truth, predicted = tracks["genre"], [GENRES[i] for i in scores.argmax(axis=1)]
    assert summary["facts"] == {"model": "YAMNet zero-shot (AudioSet classes)", "data": "hand-made (40 tracks)",
                                "protocol": "zero-shot", "backend": "yamnet", "augmentation": "off", "seeds": "0",
                                "runs": 1}
    accuracy = accuracy_score(truth, predicted)
    assert accuracy == pytest.approx(37 / 40)
    assert summary["accuracy"] == {"mean": pytest.approx(accuracy), "std": 0.0}
    loss = log_loss(truth, scores / scores.sum(axis=1, keepdims=True), labels=list(GENRES))
    assert summary["loss"] == {"mean": pytest.approx(loss, rel=1e-9), "std": 0.0}
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=list(GENRES),
                                                                     zero_division=0)
    np.testing.assert_allclose(summary["per_genre"][["precision", "recall", "f1"]].to_numpy(),
                               np.stack([precision, recall, f1], axis=1))
    assert list(summary["per_genre"]["support"]) == list(support)
    np.testing.assert_array_equal(summary["confusion"].to_numpy(),
                                  confusion_matrix(truth, predicted, labels=list(GENRES)))
    assert summary["interval"]["accuracy"] == pytest.approx(accuracy) and summary["interval"]["n_tracks"] == 40
    assert summary["interval"]["low"] <= accuracy <= summary["interval"]["high"]
    run = summary["per_run"].iloc[0]
    assert (run["run"], run["seed"], run["n"]) == ("zero-shot", 0, 40) and run["accuracy"] == pytest.approx(accuracy)


def test_genre_scores_from_embeddings_equal_the_network_scores(rng):
    from genrelib import yamnet

    backend = yamnet.YAMNetBackend(weights="random", seed=3)
    patches = rng.normal(-2.0, 1.0, (7, yamnet.PATCH_FRAMES, yamnet.N_MELS)).astype(np.float32)
    columns = [yamnet.CLASS_NAMES.index(predict.ZERO_SHOT_CLASSES[g]) for g in GENRES]
    expected = backend.score_patches(patches)[:, columns]
    embeddings = backend.embed_patches(patches)
    got = predict.zero_shot_genre_scores([embeddings[:4], embeddings[4:]], backend=backend)
    np.testing.assert_allclose(got, np.stack([expected[:4].mean(axis=0), expected[4:].mean(axis=0)]),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ParameterError):
        predict.zero_shot_genre_scores([embeddings[:, :100]], backend=backend)


def test_write_results_adds_rows_and_keeps_the_others_byte_identical(rng, tmp_path):
    for stem in ("table3_accuracy", "table2_per_genre", "per_run"):
        for suffix in ("json", "md"):
            shutil.copy(ROOT / "results" / f"{stem}.{suffix}", tmp_path)
    before = {stem: json.loads((tmp_path / f"{stem}.json").read_text())["rows"]
              for stem in ("table3_accuracy", "table2_per_genre", "per_run")}
    lines = {stem: (tmp_path / f"{stem}.md").read_text().splitlines() for stem in before}
    tracks, scores = _hand_made(rng)
    summary = predict.zero_shot_summary(predict.zero_shot_predictions(tracks, scores), data="hand-made (40 tracks)")
    evaluate.write_results([summary], output_dir_=tmp_path)
    for stem, old in before.items():
        rows = json.loads((tmp_path / f"{stem}.json").read_text())["rows"]
        added = [row for row in rows if row not in old]
        assert len(added) == {"table3_accuracy": 1, "table2_per_genre": 10, "per_run": 1}[stem]
        assert all(row["data"] == "hand-made (40 tracks)" for row in added)
        assert [row for row in rows if row not in added] == old
        new_lines = set((tmp_path / f"{stem}.md").read_text().splitlines())
        assert all(line in new_lines for line in lines[stem] if line.startswith("| ") and "---" not in line)
    table3 = [r for r in json.loads((tmp_path / "table3_accuracy.json").read_text())["rows"]
              if r["data"] == "hand-made (40 tracks)"]
    assert table3[0]["paper_accuracy"] is None and table3[0]["accuracy_std"] == 0.0
    interval = json.loads((tmp_path / "intervals.json").read_text())["rows"]
    assert [r["model"] for r in interval] == [predict.ZERO_SHOT_MODEL]
    assert not (tmp_path / "paired.json").exists()  # no CNN and baseline of the same runs in this call


def test_figure_from_results_tables(rng, tmp_path):
    tracks, scores = _hand_made(rng)
    summary = predict.zero_shot_summary(predict.zero_shot_predictions(tracks, scores), data="hand-made (40 tracks)")
    results, figures = tmp_path / "results", tmp_path / "figures"
    evaluate.write_results([summary], output_dir_=results)
    written = predict.zero_shot_figure(results_dir=results, figures_dir=figures)
    assert [p.name for p in written] == ["zero_shot_vs_trained.png", "zero_shot_vs_trained.pdf"]
    assert "zero_shot_vs_trained" in (figures / "README.md").read_text()


def test_comparison_reads_the_yamnet_rows_and_prefers_a_fresh_zero_shot(rng):
    table = json.loads((ROOT / "results" / "table2_per_genre.json").read_text())["rows"]
    committed = {(r["model"], r["protocol"], r["augmentation"], r["genre"]): r["f1"] for r in table
                 if r["backend"] == "yamnet"}
    scores, described = predict.zero_shot_comparison(results_dir=ROOT / "results")
    assert list(scores.columns) == ["zero-shot (AudioSet classes, all tracks)", "linear probe (clip-mean + LR)",
                                    "paper CNN, no augmentation", "paper CNN, augmentation"]
    assert len(described) == 4 and "kfold (5-fold), augmentation on, 15 run(s)" in described[3]
    for genre in ("blues", "metal"):
        assert scores.at[genre, "zero-shot (AudioSet classes, all tracks)"] == \
            committed[(predict.ZERO_SHOT_MODEL, "zero-shot", "off", genre)]
        assert scores.at[genre, "paper CNN, augmentation"] == \
            committed[(evaluate.MODELS["cnn"], "kfold (5-fold)", "on", genre)]
    tracks, hand_scores = _hand_made(rng)
    fresh = predict.zero_shot_summary(predict.zero_shot_predictions(tracks, hand_scores), data="hand-made (40 tracks)")
    scores, described = predict.zero_shot_comparison(results_dir=ROOT / "results", zero_shot=fresh)
    np.testing.assert_array_equal(scores["zero-shot (AudioSet classes, all tracks)"].to_numpy(),
                                  fresh["per_genre"]["f1"].to_numpy())
    assert described[0].endswith("computed now, hand-made (40 tracks)")


def test_figure_needs_zero_shot_rows(tmp_path):
    from genrelib.errors import DataError

    table = json.loads((ROOT / "results" / "table2_per_genre.json").read_text())
    table["rows"] = [row for row in table["rows"] if row["protocol"] != "zero-shot"]
    (tmp_path / "table2_per_genre.json").write_text(json.dumps(table))
    with pytest.raises(DataError, match="--zero-shot"):
        predict.zero_shot_figure(results_dir=tmp_path, figures_dir=tmp_path / "figures")


def test_cli_zero_shot_refuses_run_dirs(tmp_path, capsys):
    from genrelib.cli import main

    assert main(["evaluate", "--zero-shot", str(tmp_path)]) == 2
    assert "--zero-shot" in capsys.readouterr().err
    assert main(["evaluate"]) == 2
