"""Small synthetic inputs for the classifier tests (model, train, evaluate, predict, pipeline).

Embedding tables are written directly as ``.npz`` files (no audio, no backend), so a test of training or
evaluation costs only the training itself. Each genre gets a learnable signature: a raised embedding
dimension of its own, in every patch, under unit Gaussian noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrelib.config import GENRES, Config
from genrelib.storage import atomic_save_npz

#: Backend facts for runs built from :func:`fake_tracks` (no real backend behind them).
FAKE_BACKEND = {"name": "fake", "weights_checksum": "none", "front_end_version": "fake-1", "embedding_dim": 12}

#: A configuration that trains in about a second: tiny network, few epochs, no augmentation.
TINY = Config(augment_training=False).replace(**{
    "model.conv_filters": [8], "model.dense_units": 16, "model.dropout_rate": 0.2,
    "train.epochs": 6, "train.batch_size": 16, "train.valid_size": 0.2, "train.folds": 2,
})


def separable(n_per_class: int, *, n_patches: int = 6, dim: int = 12, n_classes: int = len(GENRES),
              seed: int = 0, signal: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Clips of class ``c`` carry ``+signal`` in dimension ``c % dim`` of every patch, plus N(0, 1) noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = rng.standard_normal((len(y), n_patches, dim)).astype(np.float32)
    x[np.arange(len(y)), :, y % dim] += signal
    return x, y


def fake_tracks(folder: Path, *, per_genre: int = 6, n_patches: int = 6, dim: int = 12, seed: int = 0,
                lengths: dict[str, int] | None = None) -> pd.DataFrame:
    """An embedded track index like ``embed_dataset``'s output: ``track_id``, ``genre``, ``path`` (a small
    stand-in file, so data checksums work), ``embedding_path``, ``n_patches``, ``error``."""
    folder = Path(folder)
    x, y = separable(per_genre, n_patches=n_patches, dim=dim, seed=seed)
    rows = []
    for i, (clip, label) in enumerate(zip(x, y)):
        genre = GENRES[label]
        track_id = f"{genre}.{i % per_genre:05d}"
        audio = folder / "audio" / f"{track_id}.wav"
        audio.parent.mkdir(parents=True, exist_ok=True)
        audio.write_bytes(f"stand-in for {track_id}".encode())
        clip = clip[: (lengths or {}).get(track_id, n_patches)]
        target = atomic_save_npz(folder / "emb" / f"{track_id}.npz", embedding=clip,
                                 timestamps=np.arange(len(clip), dtype=np.float32))
        rows.append({"track_id": track_id, "genre": genre, "path": str(audio), "embedding_path": str(target),
                     "n_patches": len(clip), "error": None})
    return pd.DataFrame(rows)


def fake_augmented(folder: Path, tracks: pd.DataFrame, track_ids, *, copies: int = 2, seed: int = 1) -> pd.DataFrame:
    """An embedded augmentation manifest for ``track_ids``: each copy is its track's embedding plus noise."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    by_id = tracks.set_index("track_id")
    rows = []
    for track_id in track_ids:
        with np.load(by_id.at[track_id, "embedding_path"]) as stored:
            base = stored["embedding"]
        rows.append({"item_id": track_id, "track_id": track_id, "genre": by_id.at[track_id, "genre"],
                     "method": "original", "embedding_path": by_id.at[track_id, "embedding_path"]})
        for copy in range(copies):
            item_id = f"{track_id}+white_noise.{copy}"
            target = atomic_save_npz(folder / "aug" / f"{item_id}.npz",
                                     embedding=(base + 0.3 * rng.standard_normal(base.shape)).astype(np.float32),
                                     timestamps=np.arange(len(base), dtype=np.float32))
            rows.append({"item_id": item_id, "track_id": track_id, "genre": by_id.at[track_id, "genre"],
                         "method": "white_noise", "embedding_path": str(target)})
    return pd.DataFrame(rows)


def write_fake_run(run_dir: Path, predictions: pd.DataFrame, *, seed: int = 0, fold: int | None = 0,
                   protocol: str = "kfold", backend: str = "fake", augmented: bool = True,
                   data_name: str = "fake", history: pd.DataFrame | None = None, split=None) -> Path:
    """A complete run directory written by hand (for evaluation tests that need no training)."""
    from genrelib.data import Split

    run_dir.mkdir(parents=True, exist_ok=True)
    Config().to_json(run_dir / "config.json")
    tested = predictions[predictions["side"] == "test"]["track_id"]
    split = split or Split(train=(), valid=(), test=tuple(sorted(tested)), protocol=protocol, seed=seed, fold=fold)
    split.to_json(run_dir / "split.json")
    (history if history is not None else pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.0], "accuracy": [.2, .6],
                                                        "val_loss": [2.1, 1.2], "val_accuracy": [.2, .5]})
     ).to_csv(run_dir / "history.csv", index=False)
    predictions.to_csv(run_dir / "predictions.csv", index=False)
    meta = {"status": "complete", "seed": seed, "fold": fold, "protocol": protocol, "augmented": augmented,
            "backend": {**FAKE_BACKEND, "name": backend}, "data": {"name": data_name, "n_tracks": 100},
            "n_patches": 6, "embedding_dim": 12}
    (run_dir / "meta.json").write_text(json.dumps(meta))
    return run_dir


def predictions_frame(true: list[str], predicted: list[str], *, confidence: float = 0.9,
                      side: str = "test") -> pd.DataFrame:
    """Predictions with ``confidence`` on the predicted genre and the rest spread evenly."""
    rows = []
    for i, (genre, guess) in enumerate(zip(true, predicted)):
        p = np.full(len(GENRES), (1 - confidence) / (len(GENRES) - 1))
        p[GENRES.index(guess)] = confidence
        rows.append({"item_id": f"{genre}.{i:05d}", "track_id": f"{genre}.{i:05d}", "genre": genre, "side": side,
                     "predicted": guess, **{f"p_{g}": v for g, v in zip(GENRES, p)}})
    return pd.DataFrame(rows)


@pytest.fixture(autouse=True)
def isolated_outputs(tmp_path, monkeypatch):
    """Runs and caches of a test go to its own folder (autouse in every module that imports it)."""
    monkeypatch.setenv("GENRELIB_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("GENRELIB_CACHE", str(tmp_path / "cache"))
