"""Every cache key carries the version of the code that makes the entry: change a version, get a recompute.

The committed augmented results once came from training runs that an old cache served after the code had
changed (issue 20): the run key held the configuration, backend and data but not the code. Each stage is
checked here: augmented audio, embeddings, training runs (also through the augmentation they used) and
fine-tuning's patch cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genrelib import audio, augment, data, embed, train
from genrelib.config import GENRES

from tests.classifier_helpers import FAKE_BACKEND, TINY, fake_augmented, fake_tracks
from tests.classifier_helpers import isolated_outputs  # noqa: F401 (autouse)
from tests.test_embed import CountingMfcc


@pytest.fixture(scope="module")
def gtzan(tmp_path_factory):
    root = data.synthetic_gtzan(tmp_path_factory.mktemp("gtzan"), per_genre=1, seconds=3.2, seed=4)
    return data.load_gtzan(root)


def _flacs(folder: Path) -> set[Path]:
    return set(Path(folder).rglob("*.flac"))


@pytest.mark.parametrize("module, name", [(augment, "ALGORITHM_VERSION"), (audio, "DECODING_VERSION")])
def test_augmented_audio_is_recomputed_when_its_code_version_changes(gtzan, tmp_path, monkeypatch, module, name):
    split = data.Split(tuple(gtzan["track_id"]), (), (), protocol="unit-test")
    options = {"cache_dir": tmp_path / "aug", "seed": 0, "n_jobs": 1, "progress": False, "track_ids": ["rock.00000"]}
    first = augment.augment_split(gtzan, split, **options)
    assert len(_flacs(tmp_path / "aug")) == 3
    again = augment.augment_split(gtzan, split, **options)
    assert list(again["path"]) == list(first["path"]) and len(_flacs(tmp_path / "aug")) == 3  # a cache hit

    monkeypatch.setattr(module, name, getattr(module, name) + "-changed")
    changed = augment.augment_split(gtzan, split, **options)
    copies = changed["method"] != "original"
    assert not set(changed.loc[copies, "path"]) & set(first.loc[copies, "path"])
    assert len(_flacs(tmp_path / "aug")) == 6  # computed again, not served from the old entries
    for old, new in zip(first.loc[copies, "path"], changed.loc[copies, "path"]):
        np.testing.assert_array_equal(audio.load(old, sr=None), audio.load(new, sr=None))  # same code, same bytes


@pytest.mark.parametrize("module, name", [(embed, "EMBEDDING_VERSION"), (audio, "DECODING_VERSION")])
def test_embeddings_are_recomputed_when_their_code_version_changes(gtzan, tmp_path, monkeypatch, module, name):
    first_backend = CountingMfcc()
    first = embed.embed_dataset(gtzan, backend=first_backend, cache_dir_=tmp_path / "emb", progress=False)
    hit = CountingMfcc()
    embed.embed_dataset(gtzan, backend=hit, cache_dir_=tmp_path / "emb", progress=False)
    assert first_backend.calls == len(GENRES) and hit.calls == 0

    monkeypatch.setattr(module, name, getattr(module, name) + "-changed")
    recomputed = CountingMfcc()
    changed = embed.embed_dataset(gtzan, backend=recomputed, cache_dir_=tmp_path / "emb", progress=False)
    assert recomputed.calls == len(GENRES)
    assert not set(changed["embedding_path"]) & set(first["embedding_path"])


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    return fake_tracks(tmp_path_factory.mktemp("tracks"), per_genre=4)


def _augmenter(folder: Path, tracks, *, provenance: dict | None):
    def augmented_for(split):
        return fake_augmented(folder, tracks, split.train, copies=1)

    if provenance is not None:
        augmented_for.provenance = provenance
    return augmented_for


def _run_group(tracks, runs_dir: Path, augmented_for=None) -> tuple[Path, int]:
    """Train the paper protocol once; return its group folder and the modification stamp of its run."""
    config = TINY.replace(protocol="paper", augment_training=augmented_for is not None,
                          **{"train.epochs": 1, "train.valid_size": 0.25})
    [run] = train.run_protocol(tracks, config=config, backend=FAKE_BACKEND, augmented_for=augmented_for,
                               runs_dir=runs_dir, data={"name": "fake"}, progress=False)
    return run.parent, (run / "predictions.csv").stat().st_mtime_ns


def test_runs_are_retrained_when_the_training_code_version_changes(tracks, tmp_path, monkeypatch):
    group, stamp = _run_group(tracks, tmp_path)
    assert _run_group(tracks, tmp_path) == (group, stamp)  # the same code reuses the finished run
    monkeypatch.setattr(train, "TRAINING_VERSION", train.TRAINING_VERSION + "-changed")
    changed, changed_stamp = _run_group(tracks, tmp_path)
    assert changed != group and changed_stamp != stamp
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


@pytest.mark.parametrize("module, name", [(embed, "EMBEDDING_VERSION"), (audio, "DECODING_VERSION")])
def test_runs_are_retrained_when_upstream_code_changes(tracks, tmp_path, monkeypatch, module, name):
    group, _ = _run_group(tracks, tmp_path)
    monkeypatch.setattr(module, name, getattr(module, name) + "-changed")
    assert _run_group(tracks, tmp_path)[0] != group


def test_augmented_runs_follow_the_augmentation_that_made_their_clips(tracks, tmp_path):
    provenance = {"seed": 0, **augment.code_versions()}
    group, stamp = _run_group(tracks, tmp_path, _augmenter(tmp_path / "a", tracks, provenance=provenance))
    same = _augmenter(tmp_path / "b", tracks, provenance=dict(provenance))
    assert _run_group(tracks, tmp_path, same) == (group, stamp)
    other_code = _augmenter(tmp_path / "c", tracks, provenance={**provenance, "version": "augment-old"})
    other_seed = _augmenter(tmp_path / "d", tracks, provenance={**provenance, "seed": 1})
    groups = {group, _run_group(tracks, tmp_path, other_code)[0], _run_group(tracks, tmp_path, other_seed)[0]}
    assert len(groups) == 3


def test_the_pipeline_augmenter_states_its_seed_and_code(tracks):
    from genrelib import pipeline

    augmenter = pipeline.make_augmenter(tracks, config=TINY.replace(seed=7), backend="mfcc", progress=False)
    assert augmenter.provenance == {"seed": 7, **augment.code_versions()}
    assert augment.code_versions()["version"] == augment.ALGORITHM_VERSION
    assert train.code_versions(augmenter)["augmentation"] == augmenter.provenance


def test_finetune_patches_are_recomputed_when_the_finetune_version_changes(gtzan, tmp_path, monkeypatch):
    from genrelib import finetune
    from genrelib.finetune import cache

    first = finetune.patch_dataset(gtzan.head(2), backbone="musicnn-msd",
                                   cache_dir_=tmp_path / "patches", progress=False)
    monkeypatch.setattr(cache, "FINETUNE_VERSION", cache.FINETUNE_VERSION + "-changed")
    calls = []
    original = finetune.Backbone.patches

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(finetune.Backbone, "patches", counting)
    changed = finetune.patch_dataset(gtzan.head(2), backbone="musicnn-msd", cache_dir_=tmp_path / "patches",
                                     progress=False)
    assert len(calls) == 2 and not set(changed["patches_path"]) & set(first["patches_path"])
