"""How sure a result is: intervals over test tracks and paired tests between two classifiers.

Notebook: 05_evaluation.

The spread of fold accuracies (``± std`` in the tables) says how much one fold differs from another; it is
not the uncertainty of the mean accuracy, because the seeds of a protocol test the same tracks again. What a
reader wants to know is how the accuracy would move with other tracks of the same kind, so the resampling
unit here is the **test track**: each track's correctness is averaged over the runs that tested it (a value
in [0, 1]), and the tracks are resampled (Efron's percentile bootstrap, :func:`scipy.stats.bootstrap`).

Two classifiers tested on the same tracks are compared on those tracks, pair by pair (Dietterich 1998):
:func:`paired_comparison` gives the exact McNemar test (a sign test over the tracks on which the two
differ) and a bootstrap interval of the accuracy difference. With one run per track the sign test *is*
McNemar's exact test on the discordant pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import in_range, positive_int
from .errors import ParameterError

__all__ = ["track_correctness", "accuracy_interval", "paired_comparison"]


def track_correctness(predictions: pd.DataFrame) -> pd.Series:
    """Fraction of the runs that got each test track right.

    Parameters
    ----------
    predictions : pd.DataFrame
        Pooled predictions (``summary["predictions"]`` of :func:`genrelib.evaluate.summarize_runs`):
        ``track_id``, ``genre``, ``predicted``; one row per track and run.

    Returns
    -------
    pd.Series
        Indexed by ``track_id`` (sorted), values in [0, 1].
    """
    missing = {"track_id", "genre", "predicted"} - set(predictions.columns)
    if missing:
        raise ParameterError(f"predictions lack column(s) {', '.join(sorted(missing))}")
    if predictions.empty:
        raise ParameterError("predictions are empty: no test track to count")
    correct = (predictions["genre"] == predictions["predicted"]).astype(float)
    return correct.groupby(predictions["track_id"]).mean().sort_index()


def _confidence(value) -> float:
    value = in_range(value, 0.0, 1.0, "confidence")
    if value in (0.0, 1.0):
        raise ParameterError(f"confidence={value!r} must lie strictly between 0 and 1")
    return value


def _bootstrap_interval(values: np.ndarray, *, confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
    from scipy.stats import bootstrap

    if len(values) < 2 or np.all(values == values[0]):
        return float(values.mean()), float(values.mean())  # no spread to resample
    result = bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                       method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def accuracy_interval(predictions: pd.DataFrame, *, confidence: float = 0.95, n_resamples: int = 2000,
                      seed: int = 0) -> dict:
    """Accuracy over test tracks with a bootstrap confidence interval.

    Parameters
    ----------
    predictions : pd.DataFrame
        See :func:`track_correctness`.
    confidence : float in (0, 1)
    n_resamples : int > 0
    seed : int
        Seeds the resampling (the interval is reproducible).

    Returns
    -------
    dict
        ``accuracy`` (mean over tracks of their correctness), ``low``, ``high``, ``n_tracks``,
        ``confidence``, ``method``.
    """
    confidence = _confidence(confidence)
    values = track_correctness(predictions).to_numpy()
    low, high = _bootstrap_interval(values, confidence=confidence, n_resamples=positive_int(n_resamples, "n_resamples"),
                                    seed=seed)
    return {"accuracy": float(values.mean()), "low": low, "high": high, "n_tracks": int(len(values)),
            "confidence": confidence, "method": "percentile bootstrap over test tracks"}


def paired_comparison(first: pd.DataFrame, second: pd.DataFrame, *, confidence: float = 0.95,
                      n_resamples: int = 2000, seed: int = 0) -> dict:
    """Compare two classifiers on the test tracks both were tested on.

    Parameters
    ----------
    first, second : pd.DataFrame
        Pooled predictions of each (see :func:`track_correctness`), e.g. with and without augmentation on
        the same splits and seeds.

    Returns
    -------
    dict
        ``n_tracks`` (tracks in both), ``first`` / ``second`` (their accuracies on those tracks),
        ``difference`` (first - second), ``low`` / ``high`` (bootstrap interval of the difference),
        ``first_better`` / ``second_better`` (tracks on which each is right more often), ``p_value``
        (two-sided exact McNemar / sign test over those tracks; 1.0 when they never differ).
    """
    from scipy.stats import binomtest

    a, b = track_correctness(first), track_correctness(second)
    shared = a.index.intersection(b.index)
    if shared.empty:
        raise ParameterError("the two sets of predictions share no test track: nothing to pair")
    difference = (a[shared] - b[shared]).to_numpy()
    first_better, second_better = int((difference > 0).sum()), int((difference < 0).sum())
    discordant = first_better + second_better
    p_value = float(binomtest(first_better, discordant, 0.5).pvalue) if discordant else 1.0
    low, high = _bootstrap_interval(difference, confidence=_confidence(confidence),
                                    n_resamples=positive_int(n_resamples, "n_resamples"), seed=seed)
    return {"n_tracks": int(len(shared)), "first": float(a[shared].mean()), "second": float(b[shared].mean()),
            "difference": float(difference.mean()), "low": low, "high": high, "first_better": first_better,
            "second_better": second_better, "p_value": p_value}
