"""genrelib.train: Table 1, learning, determinism, checkpoints, protocols, run directories, the leakage guard."""

import os
from contextlib import nullcontext

import keras
import numpy as np
import pandas as pd
import pytest

from genrelib import train
from genrelib.config import GENRES, Config
from genrelib.data import Split
from genrelib.errors import DataError, LeakageError, ParameterError, TrainingError

from tests.classifier_helpers import FAKE_BACKEND, TINY, fake_augmented, fake_tracks, separable
from tests.classifier_helpers import isolated_outputs  # noqa: F401 (autouse)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    return fake_tracks(tmp_path_factory.mktemp("tracks"), per_genre=6)


def weights_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


# --------------------------------------------------------------------------------------- fit_classifier

def test_learns_a_separable_task_with_the_configured_optimizer():
    x, y = separable(12, seed=0)
    x_test, y_test = separable(5, seed=1)
    config = TINY.replace(**{"train.epochs": 15, "train.learning_rate": 0.003, "train.rho": 0.8,
                             "train.checkpoint": "last"})
    model, history = train.fit_classifier(x, y, config=config, seed=0)
    accuracy = np.mean(model.predict(x_test, verbose=0).argmax(axis=1) == y_test)
    assert accuracy >= 0.9
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert list(history["epoch"]) == list(range(1, 16))
    optimizer = model.optimizer
    assert type(optimizer).__name__ == "RMSprop"
    assert float(optimizer.learning_rate) == pytest.approx(0.003) and optimizer.rho == pytest.approx(0.8)


def test_same_seed_same_weights_and_history_other_seed_differs():
    x, y = separable(4, seed=2)
    runs = [train.fit_classifier(x, y, x_valid=x[::3], y_valid=y[::3], config=TINY, seed=seed) for seed in (7, 7, 8)]
    (m1, h1), (m2, h2), (m3, h3) = runs
    assert weights_equal(m1, m2)
    pd.testing.assert_frame_equal(h1, h2)
    assert not weights_equal(m1, m3)


def test_same_seed_same_weights_while_another_process_keeps_a_core_busy():
    """Thread scheduling under load must not change a seeded run (issue 20: numbers that did not reproduce)."""
    import subprocess
    import sys

    x, y = separable(6, seed=5)
    config = TINY.replace(**{"train.epochs": 4, "train.batch_size": 8})
    quiet, quiet_history = train.fit_classifier(x, y, x_valid=x[::4], y_valid=y[::4], config=config, seed=11)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded, loaded_history = train.fit_classifier(x, y, x_valid=x[::4], y_valid=y[::4], config=config, seed=11)
        assert busy.poll() is None  # the load really ran during the second fit
    finally:
        busy.kill()
        busy.wait()
    assert weights_equal(quiet, loaded)
    pd.testing.assert_frame_equal(quiet_history, loaded_history)
    np.testing.assert_array_equal(quiet.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_best_checkpoint_is_the_epoch_of_lowest_validation_loss(tmp_path):
    x, y = separable(4, seed=3)
    x_valid, y_valid = separable(2, seed=4)
    config = TINY.replace(**{"train.epochs": 8})
    model, history = train.fit_classifier(x, y, x_valid=x_valid, y_valid=y_valid, config=config, seed=0,
                                          run_dir=tmp_path)
    best = int(history["val_loss"].idxmin())
    assert history.attrs["best_epoch"] == best + 1
    # the returned weights reproduce the validation loss logged at that epoch...
    loss, _ = model.evaluate(x_valid, keras.utils.to_categorical(y_valid, 10), verbose=0)
    assert loss == pytest.approx(history["val_loss"].iloc[best], rel=1e-4)
    # ...and are the ones saved as best.keras; last.keras holds the final epoch's
    assert weights_equal(model, keras.models.load_model(tmp_path / "best.keras"))
    last = keras.models.load_model(tmp_path / "last.keras")
    loss_last, _ = last.evaluate(x_valid, keras.utils.to_categorical(y_valid, 10), verbose=0)
    assert loss_last == pytest.approx(history["val_loss"].iloc[-1], rel=1e-4)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "history.csv"), history, check_exact=False)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_last_checkpoint_returns_the_last_epoch_and_still_saves_the_best(tmp_path):
    x, y = separable(4, seed=3)
    x_valid, y_valid = separable(2, seed=4)
    y_valid = (y_valid + 1) % 10  # wrong labels: validation loss grows as the network learns, the best epoch is early
    config = TINY.replace(**{"train.epochs": 8, "train.learning_rate": 0.003})
    best_model, history = train.fit_classifier(x, y, x_valid=x_valid, y_valid=y_valid, config=config, seed=0,
                                               run_dir=tmp_path / "best")
    assert history.attrs["best_epoch"] < 8  # otherwise best and last are one epoch and nothing is tested
    last_model, last_history = train.fit_classifier(x, y, x_valid=x_valid, y_valid=y_valid, seed=0,
                                                    config=config.replace(**{"train.checkpoint": "last"}),
                                                    run_dir=tmp_path / "last")
    assert last_history.attrs["best_epoch"] == 8
    assert weights_equal(last_model, keras.models.load_model(tmp_path / "last" / "last.keras"))
    assert weights_equal(best_model, keras.models.load_model(tmp_path / "last" / "best.keras"))
    assert not weights_equal(best_model, last_model)


@pytest.mark.parametrize("change, context", [
    ({}, nullcontext()),
    ({"x_train": np.zeros((4, 3))}, pytest.raises(ParameterError, match="x_train")),
    ({"y_train": np.array([0.0, 1.0, 2.0, 3.0])}, pytest.raises(ParameterError, match="y_train")),
    ({"y_train": np.array([0, 1, 2, 10])}, pytest.raises(ParameterError, match="labels")),
    ({"x_train": np.full((4, 2, 3), np.nan)}, pytest.raises(ParameterError, match="NaN")),
    ({"x_valid": None}, pytest.raises(ParameterError, match="checkpoint='best'")),
    ({"x_valid": np.zeros((2, 5, 3))}, pytest.raises(ParameterError, match="x_valid")),
    ({"config": TINY.replace(**{"train.optimizer": "adagrad"})}, pytest.raises(ParameterError, match="optimizer")),
    ({"config": TINY.replace(**{"train.epochs": 0})}, pytest.raises(ParameterError, match="epochs")),
])
def test_fit_classifier_checks_arguments(change, context):
    arguments = {"x_train": np.ones((4, 2, 3)), "y_train": np.array([0, 1, 2, 3]),
                 "x_valid": np.ones((2, 2, 3)), "y_valid": np.array([0, 1]),
                 "config": TINY.replace(**{"train.epochs": 1})}
    arguments.update(change)
    x_train, y_train = arguments.pop("x_train"), arguments.pop("y_train")
    with context:
        train.fit_classifier(x_train, y_train, **arguments)


# ------------------------------------------------------------------------------------------- protocols

def test_splits_of_each_protocol(tracks):
    paper = train.make_splits(tracks, protocol="paper", seed=0, config=TINY)
    assert len(paper) == 1 and len(paper[0].test) == 15 and len(paper[0].valid) == 12  # 25 % and 20 % of 60
    assert set(pd.Series([t.split(".")[0] for t in paper[0].test]).value_counts()) == {1, 2}  # stratified
    with pytest.raises(DataError, match="fewer tracks than genres"):  # 10 % of 60 tracks cannot hold 10 genres
        train.make_splits(tracks, protocol="paper", config=Config())
    folds = train.make_splits(tracks, protocol="kfold", seed=0, config=Config())
    assert len(folds) == 5  # fewer than 50 tracks per genre: 5 folds
    assert sorted(t for f in folds for t in f.test) == sorted(tracks["track_id"])
    assert len(train.make_splits(tracks, protocol="kfold", config=TINY)) == 2
    from genrelib.data import split_fault_filtered

    assert train.make_splits(tracks, protocol="fault_filtered", seed=5) == [split_fault_filtered(tracks)]
    unknown = tracks.assign(track_id=[t.replace(".0000", ".0999") for t in tracks["track_id"]])
    with pytest.raises(DataError, match="fault-filtered"):  # ids outside GTZAN: nothing left to train or test
        train.make_splits(unknown, protocol="fault_filtered")
    with pytest.raises(ParameterError, match="protocol"):
        train.make_splits(tracks, protocol="random")


def test_clip_table_puts_augmented_copies_on_the_training_side_only(tmp_path, tracks):
    split = train.make_splits(tracks, protocol="paper", seed=0, config=TINY)[0]
    augmented = fake_augmented(tmp_path, tracks, split.train[:5])
    table = train.clip_table(split, tracks, augmented=augmented)
    copies = table[table["method"] != "original"]
    assert len(copies) == 10 and set(copies["side"]) == {"train"}
    for side in ("valid", "test"):
        on_side = table[table["side"] == side]
        assert set(on_side["method"]) == {"original"} and sorted(on_side["track_id"]) == sorted(getattr(split, side))
    assert len(table) == len(tracks) + 10  # originals once each (the manifest's "original" rows are not repeated)


@pytest.mark.parametrize("side", ["test", "valid"])
def test_leakage_guard_fires_for_copies_of_held_out_tracks(tmp_path, tracks, side):
    split = train.make_splits(tracks, protocol="paper", seed=0, config=TINY)[0]
    leaked = getattr(split, side)[0]
    augmented = fake_augmented(tmp_path, tracks, [split.train[0], leaked], copies=1)
    with pytest.raises(LeakageError, match=f"{leaked}.*{side}"):
        train.clip_table(split, tracks, augmented=augmented)
    with pytest.raises(LeakageError):  # and nothing is trained
        train.train_split(split, tracks, run_dir=tmp_path / "run", augmented=augmented,
                          config=TINY.replace(augment_training=True), backend=FAKE_BACKEND)
    assert not (tmp_path / "run" / "meta.json").exists()


def test_clip_table_names_tracks_without_embeddings(tracks):
    split = train.make_splits(tracks, protocol="paper", seed=0, config=TINY)[0]
    broken = tracks.assign(embedding_path=np.where(tracks["track_id"] == split.test[0], None, tracks["embedding_path"]))
    with pytest.raises(DataError, match=split.test[0]):
        train.clip_table(split, broken)


# ------------------------------------------------------------------------------------- run directories

@pytest.fixture(scope="module")
def protocol_runs(tmp_path_factory, tracks):
    root = tmp_path_factory.mktemp("runs")
    calls = []

    def augmented_for(split):
        calls.append(split)
        return fake_augmented(root / f"aug{len(calls)}", tracks, split.train, copies=1)

    config = TINY.replace(augment_training=True, protocol="kfold", **{"train.n_seeds": 2, "seed": 3, "train.epochs": 2})
    runs = train.run_protocol(tracks, config=config, backend=FAKE_BACKEND, augmented_for=augmented_for,
                              runs_dir=root, data={"name": "fake", "n_tracks": len(tracks)}, progress=False)
    return runs, calls, config


def test_run_protocol_trains_every_fold_and_seed(protocol_runs, tracks):
    runs, calls, _ = protocol_runs
    assert [r.name for r in runs] == ["seed3-fold0", "seed3-fold1", "seed4-fold0", "seed4-fold1"]
    assert len({r.parent for r in runs}) == 1 and runs[0].parent.name.startswith("kfold-fake-aug-")
    assert len(calls) == 4 and all(c.protocol == "kfold" for c in calls)
    for run_dir, split in zip(runs, calls):
        run = train.load_run(run_dir)
        assert run["split"] == split and run["meta"]["seed"] == split.seed
        predictions = run["predictions"]
        assert sorted(predictions["track_id"]) == sorted(split.valid + split.test)
        np.testing.assert_allclose(predictions[[f"p_{g}" for g in GENRES]].sum(axis=1), 1, rtol=1e-5)
        assert run["meta"]["clips"]["train"] == 2 * len(split.train)  # original + one augmented copy each


def test_worker_processes_train_the_same_runs(protocol_runs, tracks, tmp_path, monkeypatch):
    """jobs=2 trains each run in a worker process: the same folders, histories and predictions as one by one."""
    runs, calls, config = protocol_runs
    pools, in_workers = [], train._train_in_workers
    monkeypatch.setattr(train, "_train_in_workers", lambda jobs, *, n_workers, on_done: (
        pools.append(n_workers), in_workers(jobs, n_workers=n_workers, on_done=on_done)))
    augmented = {split.fold + 10 * split.seed: fake_augmented(tmp_path / f"aug{i}", tracks, split.train, copies=1)
                 for i, split in enumerate(calls)}
    parallel = train.run_protocol(tracks, config=config, backend=FAKE_BACKEND, runs_dir=tmp_path / "runs", jobs=2,
                                  augmented_for=lambda split: augmented[split.fold + 10 * split.seed],
                                  data={"name": "fake", "n_tracks": len(tracks)}, progress=False)
    assert pools == [2]
    assert [r.name for r in parallel] == [r.name for r in runs]  # (group keys differ: another augmented_for)
    for one, other in zip(runs, parallel):
        alone, in_worker = train.load_run(one), train.load_run(other)
        assert in_worker["meta"]["status"] == "complete"
        pd.testing.assert_frame_equal(in_worker["history"], alone["history"])
        pd.testing.assert_frame_equal(in_worker["predictions"], alone["predictions"])


def test_a_failing_worker_raises_its_own_error(tracks, tmp_path):
    diverging = TINY.replace(protocol="kfold", **{"train.n_seeds": 2, "train.epochs": 2, "train.learning_rate": 1e30})
    with pytest.raises(TrainingError, match="training diverged"):
        train.run_protocol(tracks, config=diverging, backend=FAKE_BACKEND, runs_dir=tmp_path, jobs=2, progress=False)


@pytest.mark.parametrize("jobs, n_runs, cpus, expected", [
    (1, 10, 2, 1), (2, 10, 2, 2), (4, 3, 2, 3), (2, 1, 2, 1), ("auto", 10, 2, 2), ("auto", 3, 2, 1),
    ("auto", 10, 1, 1)])
def test_how_many_workers(jobs, n_runs, cpus, expected, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert train._n_workers(jobs, n_runs) == expected


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True, "two"])
def test_a_bad_number_of_jobs_is_refused_before_any_work(jobs, tracks, tmp_path):
    with pytest.raises(ParameterError, match="jobs="):
        train.run_protocol(tracks, config=TINY, backend=FAKE_BACKEND, runs_dir=tmp_path, jobs=jobs, progress=False)
    assert not any(tmp_path.iterdir())


def test_run_directory_records_provenance(protocol_runs, tracks):
    runs, _, config = protocol_runs
    run = train.load_run(runs[0])
    meta = run["meta"]
    assert meta["status"] == "complete" and meta["backend"] == FAKE_BACKEND
    assert meta["data"]["checksum"] == train.data_checksum(tracks)
    assert {"numpy", "tensorflow", "keras", "scikit-learn", "genrelib"} <= set(meta["versions"])
    assert meta["git_commit"]
    assert meta["n_patches"] == 6 and meta["embedding_dim"] == 12 and meta["augmented"] is True
    assert run["config"] == config.replace(seed=3)
    assert len(run["history"]) == config.train.epochs
    assert {p.name for p in runs[0].iterdir()} == {"meta.json", "config.json", "split.json", "history.csv",
                                                    "best.keras", "last.keras", "predictions.csv"}


def test_complete_runs_are_reused_and_overwrite_retrains(protocol_runs, tracks):
    runs, _, config = protocol_runs
    split = train.load_run(runs[0])["split"]
    stamp = (runs[0] / "predictions.csv").stat().st_mtime_ns
    kwargs = {"run_dir": runs[0], "config": config.replace(augment_training=False), "seed": 3,
              "backend": FAKE_BACKEND}
    train.train_split(split, tracks, **kwargs)
    assert (runs[0] / "predictions.csv").stat().st_mtime_ns == stamp
    (runs[0] / "baseline.csv").write_text("stale")
    train.train_split(split, tracks, overwrite=True, **kwargs)
    assert (runs[0] / "predictions.csv").stat().st_mtime_ns != stamp
    assert not (runs[0] / "baseline.csv").exists()  # nothing of the earlier attempt survives


def test_augmentation_needs_augmented_clips(tracks, tmp_path):
    config = TINY.replace(augment_training=True)
    with pytest.raises(ParameterError, match="augmented_for"):
        train.run_protocol(tracks, config=config, backend=FAKE_BACKEND, runs_dir=tmp_path, progress=False)
    split = train.make_splits(tracks, protocol="paper", config=config)[0]
    with pytest.raises(ParameterError, match="augment"):
        train.train_split(split, tracks, run_dir=tmp_path / "r", config=config, backend=FAKE_BACKEND)


def test_short_clips_are_padded_to_the_median_length(tmp_path):
    lengths = {"blues.00000": 2, "rock.00001": 9}
    tracks = fake_tracks(tmp_path, per_genre=3, lengths=lengths)
    split = Split(train=tuple(tracks["track_id"][::3]) + ("blues.00000", "rock.00001"),
                  valid=("jazz.00001",), test=("pop.00002", "metal.00002"), protocol="paper", seed=0)
    split = Split(train=tuple(sorted(set(split.train))), valid=split.valid, test=split.test, protocol="paper")
    run_dir = train.train_split(split, tracks, run_dir=tmp_path / "run",
                                config=TINY.replace(**{"train.epochs": 1}), backend=FAKE_BACKEND)
    assert train.load_run(run_dir)["meta"]["n_patches"] == 6


def test_find_and_load_runs(protocol_runs, tmp_path):
    runs, _, _ = protocol_runs
    assert sorted(train.find_runs(runs[0].parent)) == sorted(runs)
    assert {train.load_run(run)["meta"]["kind"] for run in runs} == {"train"}
    assert train.find_runs(tmp_path / "nothing") == []
    with pytest.raises(DataError, match="not a complete training run"):
        train.load_run(tmp_path)


def test_cli_builds_the_configuration_from_file_set_and_flags(tmp_path):
    from genrelib.cli import parse_args
    from genrelib.cli.train import config_from_args

    Config().replace(**{"train.epochs": 5, "model.dense_units": 7}).to_json(tmp_path / "c.json")
    args = parse_args(["train", "--config", str(tmp_path / "c.json"), "--set", "model.conv_filters=4,8",
                       "--set", "train.epochs=9", "--epochs", "11", "--seeds", "3", "--no-augment",
                       "--protocol", "kfold", "--learning-rate", "0.01"])
    config = config_from_args(args)
    assert config.train.epochs == 11 and config.model.dense_units == 7 and config.model.conv_filters == (4, 8)
    assert config.train.n_seeds == 3 and config.augment_training is False and config.protocol == "kfold"
    assert config.train.learning_rate == 0.01
    with pytest.raises(ParameterError, match="unknown configuration key"):
        config_from_args(parse_args(["train", "--set", "train.epoch=3"]))
    with pytest.raises(SystemExit):
        parse_args(["train", "--epochs", "0"])


@pytest.mark.parametrize("name, kind", [("rmsprop", "RMSprop"), ("adam", "Adam"), ("sgd", "SGD")])
def test_build_optimizer_kind_and_learning_rate_override(name, kind):
    config = Config().replace(**{"train.optimizer": name, "train.rho": 0.8}).train
    default, override = train.build_optimizer(config), train.build_optimizer(config, learning_rate=1e-5)
    assert type(default).__name__ == type(override).__name__ == kind
    assert float(default.learning_rate) == pytest.approx(config.learning_rate)
    assert float(override.learning_rate) == pytest.approx(1e-5)
    if kind == "RMSprop":  # rho is RMSprop's alone; the configured value reaches it, overrides or not
        assert float(default.rho) == float(override.rho) == pytest.approx(0.8)
    else:
        assert not hasattr(default, "rho")


def test_inside_run_protocol_every_inner_progress_bar_is_transient(tracks, tmp_path):
    """One bar per long loop: run_protocol's bar over its runs stays, each run's augment/embed/epoch bars vanish."""
    from genrelib import progress

    seen = []

    def augmented_for(split):
        seen.append(progress.leave())
        return fake_augmented(tmp_path / f"aug{len(seen)}", tracks, split.train, copies=1)

    config = TINY.replace(augment_training=True, protocol="paper", **{"train.n_seeds": 1, "train.epochs": 1})
    assert progress.leave()
    train.run_protocol(tracks, config=config, backend=FAKE_BACKEND, augmented_for=augmented_for,
                       runs_dir=tmp_path / "runs", progress=False)
    assert seen == [False] and progress.leave()  # inner bars transient during the run, and only then
