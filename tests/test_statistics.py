"""Intervals over test tracks and paired tests, against scipy's Wilson interval and hand-computed values."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from genrelib import statistics
from genrelib.errors import ParameterError


def _predictions(correct: list[bool], *, runs: int = 1, offset: int = 0) -> pd.DataFrame:
    rows = []
    for run in range(runs):
        for i, ok in enumerate(correct):
            rows.append({"track_id": f"blues.{i + offset:05d}", "genre": "blues",
                         "predicted": "blues" if ok else "rock", "run": run})
    return pd.DataFrame(rows)


def test_track_correctness_averages_over_runs_of_the_same_track():
    frame = pd.DataFrame({"track_id": ["a", "a", "a", "b", "b", "c"],
                          "genre": ["jazz"] * 6,
                          "predicted": ["jazz", "rock", "jazz", "rock", "rock", "jazz"]})
    result = statistics.track_correctness(frame)
    assert result.to_dict() == pytest.approx({"a": 2 / 3, "b": 0.0, "c": 1.0})


def test_interval_of_one_run_matches_the_wilson_interval():
    correct = [True] * 72 + [False] * 28
    result = statistics.accuracy_interval(_predictions(correct), n_resamples=4000)
    wilson = binomtest(72, 100).proportion_ci(confidence_level=0.95, method="wilson")
    assert result["accuracy"] == pytest.approx(0.72)
    assert result["n_tracks"] == 100
    # The percentile bootstrap of a proportion and Wilson's interval agree to about a point at n = 100.
    assert result["low"] == pytest.approx(wilson.low, abs=0.02)
    assert result["high"] == pytest.approx(wilson.high, abs=0.02)
    assert result["low"] < 0.72 < result["high"]


def test_repeating_the_same_runs_does_not_narrow_the_interval():
    correct = [True] * 30 + [False] * 10
    once = statistics.accuracy_interval(_predictions(correct, runs=1))
    thrice = statistics.accuracy_interval(_predictions(correct, runs=3))
    assert thrice["n_tracks"] == once["n_tracks"] == 40
    assert (thrice["low"], thrice["high"]) == pytest.approx((once["low"], once["high"]))


def test_interval_is_reproducible_and_degenerate_when_every_track_is_right():
    correct = [True] * 20 + [False] * 5
    assert statistics.accuracy_interval(_predictions(correct)) == statistics.accuracy_interval(_predictions(correct))
    perfect = statistics.accuracy_interval(_predictions([True] * 8))
    assert (perfect["low"], perfect["accuracy"], perfect["high"]) == (1.0, 1.0, 1.0)


def test_paired_comparison_is_mcnemar_on_discordant_tracks():
    # 8 tracks only the first gets right, 2 only the second, 20 both, 10 neither.
    first = [True] * 8 + [False] * 2 + [True] * 20 + [False] * 10
    second = [False] * 8 + [True] * 2 + [True] * 20 + [False] * 10
    result = statistics.paired_comparison(_predictions(first), _predictions(second))
    # Exact two-sided McNemar: 2 * P(X <= 2), X ~ Binomial(10, 1/2) = 2 * (1 + 10 + 45) / 1024.
    assert result["p_value"] == pytest.approx(2 * 56 / 1024)
    assert (result["first_better"], result["second_better"], result["n_tracks"]) == (8, 2, 40)
    assert result["first"] == pytest.approx(28 / 40) and result["second"] == pytest.approx(22 / 40)
    assert result["difference"] == pytest.approx(6 / 40)
    assert result["low"] <= 6 / 40 <= result["high"]


def test_paired_comparison_uses_only_shared_tracks_and_refuses_disjoint_ones():
    first = _predictions([True] * 10)
    second = _predictions([False] * 5, offset=5)  # tracks 5..9 only
    result = statistics.paired_comparison(first, second)
    assert result["n_tracks"] == 5 and result["first_better"] == 5 and result["p_value"] == pytest.approx(2 / 32)
    with pytest.raises(ParameterError, match="share no test track"):
        statistics.paired_comparison(first, _predictions([True], offset=50))


def test_identical_classifiers_have_p_value_one():
    same = _predictions([True, False, True])
    result = statistics.paired_comparison(same, same)
    assert result["p_value"] == 1.0 and result["difference"] == 0.0 and (result["low"], result["high"]) == (0.0, 0.0)


@pytest.mark.parametrize("confidence", [0, 1, 1.5])
def test_bad_confidence_is_refused(confidence):
    with pytest.raises(ParameterError, match="confidence"):
        statistics.accuracy_interval(_predictions([True, False]), confidence=confidence)


def test_bootstrap_interval_covers_the_truth_about_as_often_as_it_says():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(60):
        correct = list(rng.random(80) < 0.7)
        result = statistics.accuracy_interval(_predictions(correct), n_resamples=500, seed=trial)
        covered += result["low"] <= 0.7 <= result["high"]
    assert 0.85 <= covered / 60 <= 1.0
