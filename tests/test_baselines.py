"""genrelib.baselines: the linear probe against a direct scikit-learn computation."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pandas as pd
import pytest

from genrelib import baselines
from genrelib.errors import ParameterError


def blobs(*, n_per_class: int = 12, n_classes: int = 4, dim: int = 6, spread: float = 1.0, seed: int = 0):
    """Gaussian classes around well-separated centres (spread 1.0: overlapping; 0.01: separable)."""
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((n_classes, dim))
    labels = np.repeat([f"class{k}" for k in range(n_classes)], n_per_class)
    features = np.repeat(centres, n_per_class, axis=0) + spread * rng.standard_normal((len(labels), dim))
    return features, labels


def direct_sklearn(features, labels, *, n_splits, seeds, C=1.0):
    """The same protocol written out with sklearn primitives."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    accuracies = []
    for seed in seeds:
        for train, test in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(features, labels):
            scaler = StandardScaler().fit(features[train])
            classifier = LogisticRegression(C=C, max_iter=5000).fit(scaler.transform(features[train]), labels[train])
            accuracies.append(np.mean(classifier.predict(scaler.transform(features[test])) == labels[test]))
    return np.array(accuracies)


def test_cross_validate_equals_direct_sklearn_on_overlapping_classes():
    features, labels = blobs(spread=2.5)
    result = baselines.cross_validate(features, labels, n_splits=4, seeds=(0, 7))
    expected = direct_sklearn(features, labels, n_splits=4, seeds=(0, 7))
    np.testing.assert_allclose(result.folds["accuracy"], expected)
    assert 0.3 < result.mean < 1.0  # the classes overlap: neither chance nor perfect
    assert result.mean == pytest.approx(expected.mean())
    assert result.std == pytest.approx(expected.std())
    assert list(result.folds["seed"]) == [0] * 4 + [7] * 4
    assert set(result.folds["n_test"]) == {12} and set(result.folds["n_train"]) == {36}


def test_separable_classes_are_classified_perfectly():
    features, labels = blobs(spread=0.01)
    result = baselines.cross_validate(features, labels, n_splits=3, seeds=(1,))
    assert result.mean == 1.0 and result.std == 0.0
    assert result.summary().startswith("100.0 ± 0.0 % (3-fold stratified CV x 1 seeds [1] (3 folds)")


def test_shuffled_labels_give_chance_accuracy():
    features, labels = blobs(spread=0.01, n_per_class=20)
    shuffled = np.random.default_rng(3).permutation(labels)
    result = baselines.cross_validate(features, shuffled, n_splits=5, seeds=(0, 1, 2))
    assert result.mean < 0.5  # 4 classes: chance is 0.25


@pytest.mark.parametrize("kwargs, context", [
    ({}, nullcontext()),
    ({"n_splits": 1}, pytest.raises(ParameterError, match="n_splits=1")),
    ({"n_splits": 13}, pytest.raises(ParameterError, match="fewer than n_splits=13")),
    ({"seeds": ()}, pytest.raises(ParameterError, match="seeds")),
    ({"labels": np.zeros(5)}, pytest.raises(ParameterError, match="one label per clip")),
    ({"features": np.full((48, 6), np.nan)}, pytest.raises(ParameterError, match="NaN")),
])
def test_cross_validate_checks_arguments(kwargs, context):
    features, labels = blobs()
    arguments = {"features": features, "labels": labels, "n_splits": 3, "seeds": (0,), **kwargs}
    with context:
        baselines.cross_validate(arguments.pop("features"), arguments.pop("labels"), **arguments)


def test_cross_validate_embeddings_reads_embed_dataset_output(tmp_path):
    features, labels = blobs(spread=2.5)
    paths = []
    for i, row in enumerate(features):
        path = tmp_path / f"{i}.npz"
        patches = row + np.array([[-1.0], [1.0]])  # two patches whose mean is the row
        np.savez(path, embedding=patches.astype(np.float32), timestamps=np.zeros(2, np.float32))
        paths.append(str(path))
    frame = pd.DataFrame({"genre": labels, "embedding_path": paths})
    result = baselines.cross_validate_embeddings(frame, n_splits=4, seeds=(0,))
    expected = direct_sklearn(features.astype(np.float32).astype(np.float64), labels, n_splits=4, seeds=(0,))
    np.testing.assert_allclose(result.folds["accuracy"], expected)
    frame.loc[3, "embedding_path"] = None
    with pytest.raises(ParameterError, match="no embedding"):
        baselines.cross_validate_embeddings(frame)
