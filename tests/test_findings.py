"""genrelib.findings: sentences computed from result tables; committed prose matches the committed tables."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from genrelib import findings
from genrelib.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def _runs(accuracies, n=20):
    return pd.DataFrame({"run": [f"seed0-fold{i}" for i in range(len(accuracies))], "accuracy": accuracies,
                         "n": [n] * len(accuracies)})


def test_compare_runs_counts_wins_losses_ties_and_net_tracks_by_hand():
    cnn = _runs([1.0, 0.95, 0.90, 0.85])
    baseline = _runs([0.95, 0.95, 0.95, 0.80])
    c = findings.compare_runs(cnn, baseline)
    # run 0: +1 track, run 1: tie, run 2: -1 track, run 3: +1 track (20 test tracks each)
    assert (c["wins"], c["losses"], c["ties"], c["net_tracks"], c["test_tracks"]) == (2, 1, 1, 1, 80)
    assert c["cnn_mean"] == pytest.approx(0.925) and c["baseline_mean"] == pytest.approx(0.9125)
    text = findings.describe_comparison(cnn, baseline)
    assert "92.5 %" in text and "91.2 %" in text and "wins 2 runs, loses 1 and ties 1" in text


def test_compare_runs_refuses_different_runs():
    with pytest.raises(DataError, match="same runs"):
        findings.compare_runs(_runs([1.0, 0.9]), _runs([0.9]).assign(run="other"))


def test_replace_block_needs_its_markers():
    text = "intro\n<!-- begin generated: x (tools/write_findings.py; do not edit by hand) -->\nold\n" \
           "<!-- end generated: x -->\noutro"
    assert findings.replace_block(text, "x", "new").splitlines()[2] == "new"
    with pytest.raises(DataError, match="'y'"):
        findings.replace_block(text, "y", "new")


def test_committed_prose_blocks_match_the_committed_tables():
    """README.md and results/README.md quote exactly what the committed results/*.json give."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "write_findings.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


#: Numbers notebook prose may state: the paper's own figures and Table 1 settings, durations and sizes.
_ALLOWED = {"0.7236", "0.7544", "0.001"}
_RESULT_NUMBER = re.compile(r"\b\d{1,3}\.\d{1,2} ?(?:%|±)|\b0\.\d{3,4}\b")


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("0[0-9]_*.py")), ids=lambda p: p.stem)
def test_notebook_prose_types_no_result_numbers(notebook):
    """Accuracies in a notebook's text come from cells that print them, never typed into markdown."""
    markdown, typed = False, []
    for line in notebook.read_text().splitlines():
        if line.startswith("# %%"):
            markdown = "[markdown]" in line
        elif markdown:
            typed += [m for m in _RESULT_NUMBER.findall(line) if m not in _ALLOWED]
    assert not typed, f"{notebook.name} types result numbers into its prose: {typed}"


def _table3_rows():
    rows = []
    for backend in ("musicnn-msd", "yamnet"):
        for model, augmentation, accuracy in (("paper CNN", "off", 0.8), ("paper CNN", "on", 0.9),
                                              ("clip-mean + logistic regression", "off", 0.85)):
            rows.append({"model": model, "data": "mini (100 tracks)", "protocol": "artist (5-fold)", "backend": backend,
                         "augmentation": augmentation, "seeds": "0", "runs": 5,
                         "accuracy_mean": accuracy + (0.05 if backend == "yamnet" else 0), "accuracy_std": 0.1,
                         "loss_mean": 0.5, "loss_std": 0.1, "paper_accuracy": 0.7236, "paper_loss": 0.7544})
    return pd.DataFrame(rows)


def test_tables_keep_backends_apart_and_intervals_and_paired_tests_are_described():
    table3 = _table3_rows()
    intervals = table3.assign(accuracy=table3["accuracy_mean"], low=table3["accuracy_mean"] - 0.1,
                              high=table3["accuracy_mean"] + 0.05, n_tracks=60)
    paired = table3[table3["model"] == "paper CNN"].assign(versus="clip-mean + logistic regression", difference=0.05,
                                                            low=-0.02, high=0.12, first_better=6, second_better=3,
                                                            p_value=0.5078)
    results = {"table3": table3, "per_run": pd.DataFrame(columns=["model", "protocol", "augmentation", "backend"]),
               "intervals": intervals, "paired": paired}
    table = findings.accuracy_table(results)
    assert "| artist (5-fold), mini (100 tracks), musicnn-msd, seeds 0 | 5 | 0.800 ± 0.100 | 0.900 ± 0.100 | 0.850" in table
    assert "| artist (5-fold), mini (100 tracks), yamnet, seeds 0 | 5 | 0.850 ± 0.100 | 0.950 ± 0.100 | 0.900" in table
    sentences = findings.describe_intervals(results)
    assert sentences[0] == ("`artist`, musicnn-msd, 60 test tracks: CNN 0.800 (0.700-0.850), CNN + augmentation "
                            "0.900 (0.800-0.950), baseline 0.850 (0.750-0.900)")
    described = findings.describe_paired(results)
    assert len(described) == 4 and described[0] == (
        "`artist`, musicnn-msd, augmentation off: CNN - baseline +5.0 points (-2.0 to +12.0), better on 6 tracks, "
        "worse on 3, McNemar p = 0.51")


def test_run_time_sentence_counts_runs_trained_now_and_reused(tmp_path):
    runs = []
    for name, started in (("old", "2020-01-01T10:00:00"), ("new1", "2031-05-01T10:00:00"),
                          ("new2", "2031-05-01T10:05:00")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(json.dumps({"started": started, "train_seconds": 90.0}))
        runs.append(tmp_path / name)
    text = findings.describe_run_time(runs, seconds=725.0, started="2031-05-01T09:59:59")
    assert text.startswith("This cell took 12.1 min on ")
    assert ("3 runs, 2 trained now, 1 reused from an earlier run (the networks' fitting alone, added over runs that "
            "may have trained side by side: 3.0 min).") in text
    assert findings.describe_run_time(runs[:1], seconds=3.0, started="2031-01-01T00:00:00").endswith(
        "1 run, 0 trained now, 1 reused from an earlier run.")
