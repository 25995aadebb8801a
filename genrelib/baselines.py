"""Linear-probe baseline: how much genre a frozen embedding holds, without training a network.

Notebook: 03_vggish_features.

Each clip's patch embeddings are averaged into one vector, standardised, and classified by a
logistic regression (a scikit-learn pipeline, refitted inside every fold so no test statistic leaks
into training). Accuracy is estimated by stratified k-fold cross-validation repeated over several
shuffling seeds; every fold's accuracy is kept, and the summary states the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from .checks import positive_int
from .embed import clip_means, load_embeddings
from .errors import ParameterError

__all__ = ["linear_probe", "CVResult", "cross_validate", "cross_validate_embeddings"]


def linear_probe(*, C: float = 1.0, max_iter: int = 5000):
    """``StandardScaler`` -> ``LogisticRegression`` (L2, lbfgs, multinomial) as one sklearn pipeline.

    ``C`` is the inverse regularisation strength (sklearn's default 1.0); ``max_iter`` is generous
    because hundreds of standardised dimensions on 80 clips converge slowly.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=positive_int(max_iter, "max_iter")))


@dataclass(frozen=True)
class CVResult:
    """Accuracies of a repeated stratified k-fold cross-validation.

    ``folds`` has one row per (seed, fold): ``seed``, ``fold``, ``n_train``, ``n_test``, ``accuracy``.
    ``mean`` and ``std`` are over all those rows (population std, ddof=0).
    """

    folds: pd.DataFrame
    n_splits: int
    seeds: tuple[int, ...]
    notes: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(self.folds["accuracy"].mean())

    @property
    def std(self) -> float:
        return float(self.folds["accuracy"].std(ddof=0))

    @property
    def protocol(self) -> str:
        return (f"{self.n_splits}-fold stratified CV x {len(self.seeds)} seeds {list(self.seeds)} "
                f"({len(self.folds)} folds), clip-mean embedding -> standardise -> logistic regression")

    def summary(self) -> str:
        """e.g. ``"93.3 ± 6.7 % (5-fold stratified CV x 3 seeds [0, 1, 2] (15 folds), ...)"``."""
        return f"{100 * self.mean:.1f} ± {100 * self.std:.1f} % ({self.protocol})"

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "n_splits": self.n_splits, "seeds": list(self.seeds),
                "protocol": self.protocol, "fold_accuracies": self.folds["accuracy"].round(6).tolist(),
                **self.notes}


def cross_validate(features: np.ndarray, labels: Sequence, *, n_splits: int = 5, seeds: Sequence[int] = (0, 1, 2),
                   C: float = 1.0) -> CVResult:
    """Repeated stratified k-fold accuracy of :func:`linear_probe` on clip features.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    features : np.ndarray [shape=(n_clips, d)]
        e.g. :func:`genrelib.embed.clip_means` of a dataset's embeddings.
    labels : sequence [shape=(n_clips,)]
        Class of each clip (genre names).
    n_splits : int >= 2
        Folds per seed; every class needs at least ``n_splits`` clips.
    seeds : sequence of int
        ``random_state`` of each ``StratifiedKFold(shuffle=True)``: one repetition per seed.
    C : float > 0
        Inverse regularisation strength of the logistic regression.

    Returns
    -------
    CVResult
    """
    from sklearn.model_selection import StratifiedKFold

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    n_splits = positive_int(n_splits, "n_splits")
    if n_splits < 2:
        raise ParameterError(f"n_splits={n_splits} must be at least 2")
    if features.ndim != 2 or len(features) != len(labels):
        raise ParameterError(f"features {features.shape} must be (n_clips, d) with one label per clip "
                             f"({len(labels)} labels)")
    if not np.all(np.isfinite(features)):
        raise ParameterError("features contain NaN or infinite values")
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < n_splits:
        raise ParameterError(f"class {classes[counts.argmin()]!r} has {counts.min()} clips, fewer than "
                             f"n_splits={n_splits}")
    seeds = tuple(int(seed) for seed in seeds)
    if not seeds:
        raise ParameterError("seeds is empty: give at least one")
    rows = []
    for seed in seeds:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for fold, (train, test) in enumerate(splitter.split(features, labels)):
            model = linear_probe(C=C).fit(features[train], labels[train])
            accuracy = float(np.mean(model.predict(features[test]) == labels[test]))
            rows.append({"seed": seed, "fold": fold, "n_train": len(train), "n_test": len(test),
                         "accuracy": accuracy})
    return CVResult(pd.DataFrame(rows), n_splits=n_splits, seeds=seeds)


def cross_validate_embeddings(frame: pd.DataFrame, *, label_column: str = "genre", n_splits: int = 5,
                              seeds: Sequence[int] = (0, 1, 2), C: float = 1.0) -> CVResult:
    """:func:`cross_validate` on the result of :func:`genrelib.embed.embed_dataset` (one row per clip).

    Notebook: 03_vggish_features.
    """
    if label_column not in frame.columns or "embedding_path" not in frame.columns:
        raise ParameterError(f"frame needs 'embedding_path' and {label_column!r} columns (from embed_dataset)")
    if frame["embedding_path"].isna().any():
        missing = frame.loc[frame["embedding_path"].isna()].index[:3].tolist()
        raise ParameterError(f"rows {missing} have no embedding (failed in embed_dataset)")
    features = clip_means(load_embeddings(frame))
    return cross_validate(features, frame[label_column].to_numpy(), n_splits=n_splits, seeds=seeds, C=C)
