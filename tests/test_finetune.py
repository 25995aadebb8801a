"""Fine-tuning: which weights train, the graph cut, caches, the two stages, resume, the leakage guard, the CLI.

Most tests use musicnn-msd (792 k weights, real pretrained checkpoints) on a synthetic GTZAN of 3.2 s clips
(one 2.99 s patch each); VGGish (72 M weights) gets one training step on one patch.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrelib import GENRES, Config, LeakageError, ParameterError
from genrelib import finetune
from genrelib.errors import DataError, GenrelibError, WeightsError

#: Fast settings: no augmentation, small batches, few epochs; stage 2 at 1e-3 so its updates are visible.
QUICK = Config().replace(**{"augment_training": False, "train.batch_size": 8})
RUN = {"config": QUICK, "head_epochs": 3, "finetune_epochs": 2, "finetune_learning_rate": 1e-3, "progress": False}


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Index and one 3-fold split of a synthetic GTZAN: 10 genres x 3 tracks of 3.2 s (one musicnn patch)."""
    from genrelib import data

    root = data.synthetic_gtzan(tmp_path_factory.mktemp("finetune_gtzan"), per_genre=3, seconds=3.2, seed=2)
    index = data.load_gtzan(root)
    split = data.kfold(index, k=3, seed=0, valid_size=0.5)[0]
    return index, split


@pytest.fixture(scope="session")
def first_run(clips, tmp_path_factory):
    """One complete run (musicnn-msd, top block), shared by the read-only tests."""
    index, split = clips
    return finetune.fine_tune(split, index, run_dir=tmp_path_factory.mktemp("runs") / "run", **RUN)


def _values(model) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in model.weights]


# ------------------------------------------------------------------------------------------ freezing

def _musicnn_layers(backbone, kind: str) -> set[str]:
    return {layer.name for layer in backbone.model.layers if type(layer).__name__ == kind}


@pytest.mark.parametrize("unfreeze, expected, context", [
    (0, set(), nullcontext()),
    (1, {"penultimate_dense"}, nullcontext()),
    (2, {"penultimate_dense", "mid_3_conv"}, nullcontext()),
    ("all", None, nullcontext()),
    (6, None, pytest.raises(ParameterError, match="unfreeze=6")),
    (-1, None, pytest.raises(ParameterError, match="unfreeze=-1")),
    (1.5, None, pytest.raises(ParameterError)),
    (True, None, pytest.raises(ParameterError)),
])
def test_unfreeze_top_trains_top_blocks_never_batch_norm(unfreeze, expected, context):
    backbone = finetune.load_backbone("musicnn-msd")
    with context:
        trained = finetune.unfreeze_top(backbone, unfreeze=unfreeze)
        convolutions = _musicnn_layers(backbone, "Conv2D") | _musicnn_layers(backbone, "Conv1D")
        if expected is None:  # "all": every convolution and the dense layer
            expected = convolutions | {"penultimate_dense"}
        assert set(trained) == expected
        assert {layer.name for layer in backbone.model.layers if layer.trainable_weights} == expected
        norms = _musicnn_layers(backbone, "BatchNormalization")
        assert len(norms) == 11 and not any(backbone.model.get_layer(name).trainable for name in norms)


def test_top_block_weight_count():
    backbone = finetune.load_backbone("musicnn-msd")
    finetune.unfreeze_top(backbone, unfreeze=1)
    # penultimate_dense: 2 x 753 pooled features (max and mean) -> 200 units, plus 200 biases.
    assert sum(int(np.prod(w.shape)) for w in backbone.model.trainable_weights) == 1506 * 200 + 200


@pytest.mark.parametrize("name, context", [
    ("musicnn-msd", nullcontext()), ("vgg-msd", nullcontext()),
    ("vggish", pytest.raises(WeightsError, match="vggish")),  # converted weights are not cached in tests
    ("musicnn", pytest.raises(ParameterError, match="backbone='musicnn'")),
    ("mfcc", pytest.raises(ParameterError)),
])
def test_load_backbone_by_registry_name(name, context):
    with context:
        backbone = finetune.load_backbone(name)
        assert backbone.model.output.shape[1:] == ((200,) if name.startswith("musicnn") else (256,))
        assert not backbone.model.trainable_weights


# ------------------------------------------------------------------------------------------ the cut

@pytest.mark.parametrize("unfreeze, cut_shapes", [
    (1, [(1506,)]),  # pool_norm's output, just below penultimate_dense
    # mid_3 reads mid_2 padded (193 frames) and adds it back; the concatenation above it needs front_end and mid_1
    (2, [(193, 64), (187, 561), (187, 64), (187, 64)]),
    (5, [(187, 96, 1), (193, 96, 1)]),  # the front end: normalised input, and its time-padded copy
])
def test_split_backbone_is_exact(unfreeze, cut_shapes, rng):
    backbone = finetune.load_backbone("musicnn-msd")
    finetune.unfreeze_top(backbone, unfreeze=unfreeze)
    bottom, top = finetune.split_backbone(backbone.model)
    outputs = bottom.outputs if isinstance(bottom.outputs, list) else [bottom.outputs]
    assert sorted(tuple(t.shape[1:]) for t in outputs) == sorted(cut_shapes)
    x = rng.normal(1.0, 0.5, (3, 187, 96)).astype(np.float32)
    whole = backbone.model(x, training=False).numpy()
    np.testing.assert_allclose(top(bottom(x, training=False), training=False).numpy(), whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("unfreeze", [1, 2])  # one cut tensor, and four
def test_run_bottom_gives_keras_predict_outputs_in_order(unfreeze, rng):
    from genrelib.finetune.cache import BOTTOM_BATCH, run_bottom

    backbone = finetune.load_backbone("musicnn-msd")
    finetune.unfreeze_top(backbone, unfreeze=unfreeze)
    bottom, _ = finetune.split_backbone(backbone.model)
    for n_patches in (1, BOTTOM_BATCH, BOTTOM_BATCH + 3):  # one short batch, one full, a full and a short
        x = rng.normal(1.0, 0.5, (n_patches, 187, 96)).astype(np.float32)
        expected = bottom.predict(x, batch_size=BOTTOM_BATCH, verbose=0)
        expected = expected if isinstance(expected, list) else [expected]
        outputs = run_bottom(bottom, x)
        assert [o.shape for o in outputs] == [e.shape for e in expected]
        for output, reference in zip(outputs, expected):
            assert output.dtype == np.float32
            np.testing.assert_array_equal(output, reference)


def test_split_backbone_edge_cases():
    backbone = finetune.load_backbone("musicnn-msd")
    assert finetune.split_backbone(backbone.model) == (backbone.model, None)  # nothing trains
    finetune.unfreeze_top(backbone, unfreeze="all")
    bottom, top = finetune.split_backbone(backbone.model)
    # input_norm (batch norm, frozen) sits below every convolution, so even "all" leaves a one-layer bottom
    assert [layer.name for layer in bottom.layers][-1] in {"input_norm", "timbral_pad"}
    assert top.count_params() == backbone.model.count_params() - backbone.model.get_layer("input_norm").count_params()


def test_split_backbone_refuses_a_layer_first_called_in_another_graph():
    import keras

    dense = keras.layers.Dense(3, name="shared")
    first = keras.Input((4,))
    keras.Model(first, dense(first))  # the layer's first call
    second = keras.Input((4,))
    reused = keras.Model(second, keras.layers.Dense(2, name="above")(dense(second)))
    with pytest.raises(GenrelibError, match="'shared' was first called in another graph"):
        finetune.split_backbone(reused)


# ------------------------------------------------------------------------------------------ a training step

def _head(backbone, n_patches: int):
    from genrelib.model import build_classifier

    return build_classifier(n_patches=n_patches, embedding_dim=backbone.embedding_dim, config=QUICK.model)


def _one_step(backbone, head, x: np.ndarray, *, learning_rate: float = 1e-3):
    import keras

    model = finetune.build_end_to_end(backbone, head)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate), loss="categorical_crossentropy")
    before = _values(model)
    model.train_on_batch(x, keras.utils.to_categorical(np.arange(len(x)) % len(GENRES), len(GENRES)))
    return model, before, _values(model)


def test_train_step_changes_exactly_the_unfrozen_weights(rng):
    backbone = finetune.load_backbone("musicnn-msd")
    finetune.unfreeze_top(backbone, unfreeze=2)
    x = rng.normal(1.0, 0.5, (2, 2, 187, 96)).astype(np.float32)  # 2 clips x 2 patches
    model, before, after = _one_step(backbone, _head(backbone, 2), x)
    trainable = {id(v) for v in model.trainable_weights}
    assert {v.path.split("/")[0] for v in backbone.model.trainable_weights} == {"mid_3_conv", "penultimate_dense"}
    for variable, old, new in zip(model.weights, before, after):
        if id(variable) in trainable:  # the two blocks and the head
            assert not np.array_equal(old, new), f"{variable.path} did not train"
        else:  # frozen layers, every batch-norm statistic and scale included: bit-identical
            assert np.array_equal(old, new), f"frozen {variable.path} changed"
    assert sum("moving_mean" in v.path for v in model.weights) == 11


def test_batch_norm_stays_in_inference_mode(rng):
    backbone = finetune.load_backbone("musicnn-msd")
    finetune.unfreeze_top(backbone, unfreeze="all")
    x = rng.normal(1.0, 0.5, (4, 187, 96)).astype(np.float32)
    # With batch statistics the two calls would differ (4 patches are no population).
    np.testing.assert_array_equal(backbone.model(x, training=True).numpy(), backbone.model(x, training=False).numpy())


def test_vggish_one_step_random_weights(rng):
    backbone = finetune.load_backbone("vggish", weights="random")
    assert finetune.unfreeze_top(backbone, unfreeze="all") == [name for block in backbone.blocks[::-1] for name in block]
    assert finetune.split_backbone(backbone.model) == (None, backbone.model)  # below conv1: only a reshape
    assert finetune.unfreeze_top(backbone, unfreeze=1) == ["fc2"]
    x = rng.normal(0.0, 1.0, (1, 1, 96, 64)).astype(np.float32)
    model, before, after = _one_step(backbone, _head(backbone, 1), x)
    changed = {id(v): not np.array_equal(old, new) for v, old, new in zip(model.weights, before, after)}
    for layer in backbone.model.layers:
        for variable in layer.weights:
            assert changed[id(variable)] == (layer.name == "fc2"), f"{variable.path}"


# ------------------------------------------------------------------------------------------ caches

def test_patch_dataset_matches_front_end_and_caches(clips, monkeypatch, tmp_path):
    from genrelib import audio, musicnn

    index, _ = clips
    table = finetune.patch_dataset(index.head(3), backbone="musicnn-msd", cache_dir_=tmp_path, progress=False)
    y = audio.load(index["path"].iloc[0], sr=16000)
    with np.load(table["patches_path"].iloc[0]) as stored:
        np.testing.assert_array_equal(stored["patches"], musicnn.to_patches(musicnn.log_mel(y, sr=16000)))
    assert list(table["n_patches"]) == [1, 1, 1]

    def refuse(*args, **kwargs):
        raise AssertionError("the front end ran again for a cached clip")

    monkeypatch.setattr(finetune.Backbone, "patches", refuse)
    again = finetune.patch_dataset(index.head(3), backbone="musicnn-msd", cache_dir_=tmp_path, progress=False)
    assert list(again["patches_path"]) == list(table["patches_path"])


def test_patch_dataset_reports_short_files(tmp_path, sine):
    import soundfile as sf

    short = tmp_path / "short.wav"
    sf.write(short, sine(440.0, seconds=1.0), 16000)
    with pytest.raises(GenrelibError, match="short.wav") as caught:
        finetune.patch_dataset(pd.DataFrame({"path": [str(short)]}), cache_dir_=tmp_path / "cache", progress=False)
    assert str(caught.value).count(str(short)) == 1  # named once, not "x.wav: x.wav: clip lasts ..."


# ------------------------------------------------------------------------------------------ whole runs

def test_fine_tune_run_learns_and_records(first_run, clips, capsys):
    index, split = clips
    run = finetune.load_run(first_run)
    history = run["history"]
    assert list(history["stage"]) == ["frozen"] * 3 + ["finetuned"] * 2
    frozen = history[history["stage"] == "frozen"]
    assert frozen["loss"].iloc[-1] < frozen["loss"].iloc[0]
    predictions = run["predictions"]
    assert set(predictions["stage"]) == {"frozen", "finetuned"}
    assert sorted(predictions.loc[predictions["stage"] == "frozen", "track_id"]) == sorted(split.valid + split.test)
    for stage, accuracy in run["meta"]["test_accuracy"].items():
        test = predictions[(predictions["stage"] == stage) & (predictions["side"] == "test")]
        assert accuracy == pytest.approx((test["predicted"] == test["genre"]).mean())
    assert run["meta"]["trained_layers"] == ["penultimate_dense"]
    assert list(run["meta"]["weight_change"]) == ["penultimate_dense"]
    assert run["meta"]["weight_change"]["penultimate_dense"] > 0
    assert run["meta"]["peak_rss_mb"] > 0 and run["meta"]["cpu_seconds"] > 0


def test_fine_tuned_model_end_to_end_reproduces_predictions(first_run, clips):
    """The saved model runs on log-mel patches through the whole backbone: what the cut trained is what it is."""
    index, _ = clips
    model, backbone = finetune.load_finetuned(first_run)
    pretrained = finetune.load_backbone("musicnn-msd")
    for layer in pretrained.model.layers:
        for saved, original in zip(backbone.model.get_layer(layer.name).weights, layer.weights):
            same = np.array_equal(saved.numpy(), original.numpy())
            assert same != (layer.name == "penultimate_dense"), f"{layer.name}/{saved.name}"
    predictions = finetune.load_run(first_run)["predictions"]
    test = predictions[(predictions["stage"] == "finetuned") & (predictions["side"] == "test")]
    paths = index.set_index("track_id").loc[test["track_id"], "path"]
    table = finetune.patch_dataset(pd.DataFrame({"path": paths}), backbone=backbone, progress=False)
    x = finetune.load_patches(table, n_patches=model.input.shape[1])
    assert x.shape == (len(test), 1, 187, 96)
    np.testing.assert_allclose(model.predict(x, verbose=0), test[[f"p_{g}" for g in GENRES]], atol=1e-4)


def test_unfreeze_zero_is_a_head_only_control(first_run, clips, tmp_path):
    index, split = clips
    run = finetune.fine_tune(split, index, unfreeze=0, run_dir=tmp_path / "run", **RUN)
    model, backbone = finetune.load_finetuned(run)
    pretrained = finetune.load_backbone("musicnn-msd")
    for saved, original in zip(backbone.model.weights, pretrained.model.weights):
        assert np.array_equal(saved.numpy(), original.numpy())
    assert finetune.load_run(run)["meta"]["weight_change"] == {}
    history = finetune.load_run(run)["history"]
    # Stage 1 is the same computation as in first_run (same split, seed, head): identical numbers.
    pd.testing.assert_frame_equal(history[history["stage"] == "frozen"],
                                  finetune.load_run(first_run)["history"].query("stage == 'frozen'"))


@pytest.mark.parametrize("interrupt_after", [2, 3, 4])  # epochs: 3 in stage 1 (3 = its last), then 2 in stage 2
def test_resume_gives_the_uninterrupted_weights(first_run, clips, tmp_path, monkeypatch, interrupt_after):
    import keras

    index, split = clips
    callbacks = finetune.fit.stage_callbacks
    begun, ended = [], []

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            begun.append(epoch)

        def on_epoch_end(self, epoch, logs=None):
            ended.append(epoch)
            if len(ended) == interrupt_after:
                raise KeyboardInterrupt

    # Last in the list: the interruption comes after everything an epoch writes, Keras' backup included.
    monkeypatch.setattr(finetune.fit, "stage_callbacks", lambda *a, **k: [*callbacks(*a, **k), Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        finetune.fine_tune(split, index, run_dir=tmp_path / "run", **RUN)
    begun.clear()
    ended.append(None)  # no further interruption
    resumed = finetune.fine_tune(split, index, run_dir=tmp_path / "run", **RUN)
    assert len(begun) == 3 + 2 - interrupt_after  # it resumed: the finished epochs were not trained again
    import h5py

    def arrays(run_dir):
        with h5py.File(run_dir / "finetuned.weights.h5") as handle:
            found = {}
            handle.visititems(lambda name, item: found.update({name: item[()]}) if hasattr(item, "shape") else None)
            return found

    expected, actual = arrays(first_run), arrays(resumed)
    assert expected.keys() == actual.keys() and len(expected) > 50
    for name in expected:
        assert np.array_equal(expected[name], actual[name]), name
    pd.testing.assert_frame_equal(finetune.load_run(resumed)["history"], finetune.load_run(first_run)["history"])


def test_leakage_guard_runs_before_every_fit(clips, tmp_path, monkeypatch, capsys):
    index, split = clips
    events = []
    guard, fit_stage = finetune.runs._guard, finetune.fit.fit_stage
    monkeypatch.setattr(finetune.runs, "_guard", lambda *a, **k: (events.append("guard"), guard(*a, **k))[1])
    monkeypatch.setattr(finetune.fit, "fit_stage", lambda *a, **k: (events.append(k["stage"]), fit_stage(*a, **k))[1])
    # An augmented copy of a training track is used; a copy is just another training clip here.
    copy = index.loc[index["track_id"] == split.train[0]].assign(item_id=f"{split.train[0]}+copy", method="copy")
    finetune.fine_tune(split, index, augmented=copy, run_dir=tmp_path / "run",
                       **{**RUN, "config": QUICK.replace(augment_training=True), "progress": True})
    assert events == ["guard", "frozen", "guard", "finetuned"]
    plan = capsys.readouterr().out  # printed before anything runs
    assert "(1 augmented)" in plan and "Estimated time on this machine" in plan
    assert finetune.load_run(tmp_path / "run")["meta"]["augmented_clips"] == 1


def test_leaked_copy_is_refused_before_training(clips, tmp_path):
    index, split = clips
    leak = index.loc[index["track_id"] == split.test[0]].assign(item_id="leak", method="time_stretch")
    with pytest.raises(LeakageError, match=split.test[0]):
        finetune.fine_tune(split, index, augmented=leak, run_dir=tmp_path / "run",
                           **{**RUN, "config": QUICK.replace(augment_training=True)})
    assert not (tmp_path / "run").exists()  # refused before the run folder, let alone a stage, was written


@pytest.mark.parametrize("options, context", [
    ({}, nullcontext()),
    ({"unfreeze": 9}, pytest.raises(ParameterError, match="unfreeze=9")),
    ({"finetune_epochs": 0}, pytest.raises(ParameterError, match="finetune_epochs=0")),
    ({"finetune_learning_rate": -1.0}, pytest.raises(ParameterError, match="finetune_learning_rate=-1.0")),
    ({"head_epochs": 1}, pytest.raises(ParameterError, match="other settings")),
    ({"config": QUICK.replace(augment_training=True)}, pytest.raises(ParameterError, match="augment")),
])
def test_fine_tune_checks_arguments_and_run_dir(first_run, clips, monkeypatch, options, context):
    index, split = clips

    def no_training(*args, **kwargs):
        raise AssertionError("a complete run must not train again")

    monkeypatch.setattr(finetune.runs, "_train_stages", no_training)
    with context:
        assert finetune.fine_tune(split, index, run_dir=first_run, **{**RUN, **options}) == first_run


def _counted_test_accuracy(run_dir, stage: str) -> float:
    predictions = pd.read_csv(run_dir / "predictions.csv")
    test = predictions[(predictions["side"] == "test") & (predictions["stage"] == stage)]
    return float(np.sum(test["predicted"].to_numpy() == test["genre"].to_numpy()) / len(test))


def test_a_complete_run_of_other_training_code_is_not_reused(first_run, clips, monkeypatch):
    index, split = clips
    monkeypatch.setattr(finetune.fit, "FIT_VERSION", finetune.fit.FIT_VERSION + "-changed")
    with pytest.raises(ParameterError, match="other settings"):
        finetune.fine_tune(split, index, run_dir=first_run, **RUN)


def test_summarize_counts_each_runs_test_predictions(first_run, clips, tmp_path):
    """Accuracies are those counted from each run's predictions.csv; mean and spread are over the runs."""
    import shutil

    _, split = clips
    other = tmp_path / "other"
    shutil.copytree(first_run, other)
    predictions = pd.read_csv(other / "predictions.csv")
    row = predictions.index[(predictions["stage"] == "finetuned") & (predictions["side"] == "test")][0]
    genre = predictions.at[row, "genre"]
    # The other run differs by one fine-tuned test clip: right where the first run is wrong, or wrong where right.
    predictions.at[row, "predicted"] = genre if predictions.at[row, "predicted"] != genre else \
        next(g for g in GENRES if g != genre)
    predictions.to_csv(other / "predictions.csv", index=False)
    runs, table = finetune.summarize([first_run, other])
    assert list(runs["n_test"]) == [len(split.test)] * 2
    for stage in ("frozen", "finetuned"):
        counted = [_counted_test_accuracy(first_run, stage), _counted_test_accuracy(other, stage)]
        assert list(runs[stage]) == pytest.approx(counted)
        assert table.loc[stage, ["mean", "std", "min", "max"]].tolist() == \
            pytest.approx([np.mean(counted), np.std(counted), min(counted), max(counted)])
    assert table.loc["finetuned", "std"] == pytest.approx(0.5 / len(split.test))  # one clip of n_test apart
    assert table.loc["frozen", "std"] == 0.0
    assert list(runs["difference"]) == pytest.approx(list(runs["finetuned"] - runs["frozen"]))
    assert table.loc["frozen", "n_runs"] == 2
    assert "musicnn-msd" in table.attrs["protocol"] and "kfold" in table.attrs["protocol"]
    with pytest.raises(ParameterError):
        finetune.summarize([])
    with pytest.raises(DataError, match="not a complete"):
        finetune.load_run(first_run.parent)


# ------------------------------------------------------------------------------------------ CLI

def test_cli_parse():
    from genrelib.cli import parse_args

    args = parse_args(["finetune", "--backbone", "vggish", "--unfreeze", "all", "--finetune-learning-rate", "1e-4"])
    assert (args.backbone, args.unfreeze, args.finetune_learning_rate) == ("vggish", "all", 1e-4)
    assert parse_args(["finetune"]).unfreeze == 1
    for bad in (["--unfreeze", "-1"], ["--unfreeze", "top"], ["--backbone", "mfcc"]):
        with pytest.raises(SystemExit):
            parse_args(["finetune", *bad])


def test_cli_runs_and_prints_estimate_and_summary(clips, tmp_path, capsys):
    from genrelib.cli import main

    index, _ = clips
    root = index["path"].iloc[0].rsplit("/genres/", 1)[0]
    code = main(["finetune", "--data", root, "--protocol", "kfold", "--folds", "3", "--no-augment",
                 "--set", "train.valid_size=0.5", "--batch-size", "8", "--head-epochs", "2", "--finetune-epochs", "1",
                 "--output-dir", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "3 run(s)" in out and "frozen: test accuracy" in out and "finetuned: test accuracy" in out
    assert len(list(tmp_path.glob("finetune-kfold-musicnn-msd-unfreeze1-noaug-*/seed0-fold*/meta.json"))) == 3


def test_training_side_never_takes_a_fine_tuning_run(first_run):
    """Both kinds of run may share runs/: find_runs (hence predict's default model and the figures) and
    train.load_run must see training runs only."""
    from genrelib import predict, train
    from genrelib.errors import WeightsError

    assert finetune.load_run(first_run)["meta"]["kind"] == "finetune"
    assert train.find_runs(first_run.parent) == []
    with pytest.raises(DataError, match="not a complete training run"):
        train.load_run(first_run)
    with pytest.raises(WeightsError, match="no trained model"):
        predict.latest_run(first_run.parent)


def test_run_protocol_prints_the_plan_once_before_the_first_run_that_trains(clips, tmp_path, monkeypatch):
    index, _ = clips
    calls = []

    def fake_fine_tune(split, index, *, run_dir, describe, **_):
        calls.append((run_dir.name, describe))
        return run_dir

    monkeypatch.setattr(finetune.runs, "fine_tune", fake_fine_tune)
    config = QUICK.replace(protocol="kfold", **{"train.folds": 3, "train.valid_size": 0.5})
    runs = finetune.run_protocol(index, config=config, runs_dir=tmp_path, progress=True)
    assert [describe for _, describe in calls] == [True, False, False]
    runs[0].mkdir(parents=True)
    (runs[0] / "meta.json").write_text('{"status": "complete"}')  # resuming: the first run is done
    calls.clear()
    finetune.run_protocol(index, config=config, runs_dir=tmp_path, progress=True)
    assert [describe for _, describe in calls] == [False, True, False]
    calls.clear()
    finetune.run_protocol(index, config=config, runs_dir=tmp_path, progress=False)
    assert [describe for _, describe in calls] == [False, False, False]


def test_run_protocol_max_runs_takes_the_first_runs_of_the_same_group(clips, tmp_path, monkeypatch):
    index, _ = clips
    calls = []

    def fake_fine_tune(split, index, *, run_dir, seed, **_):
        calls.append((run_dir.parent.name, seed, split.fold))
        return run_dir

    monkeypatch.setattr(finetune.runs, "fine_tune", fake_fine_tune)
    config = QUICK.replace(protocol="kfold", **{"train.folds": 3, "train.valid_size": 0.5, "train.n_seeds": 2})
    every = finetune.run_protocol(index, config=config, runs_dir=tmp_path, progress=False)
    first = list(calls)
    calls.clear()
    some = finetune.run_protocol(index, config=config, runs_dir=tmp_path, progress=False, max_runs=2)
    assert some == every[:2] and calls == first[:2]  # same folder: a later call with more runs resumes these
    assert [(seed, fold) for _, seed, fold in first] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    with pytest.raises(ParameterError):
        finetune.run_protocol(index, config=config, runs_dir=tmp_path, progress=False, max_runs=0)
    calls.clear()
    rest = finetune.run_protocol(index, config=config, runs_dir=tmp_path, progress=False, skip_runs=4)
    assert rest == every[4:] and calls == first[4:]  # seed 1's last two folds, in the same group folder
    with pytest.raises(ParameterError, match="leaves none of the 6"):
        finetune.run_protocol(index, config=config, runs_dir=tmp_path, progress=False, skip_runs=6)


def _finetune_cv_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("finetune_cv", Path(__file__).parents[1] / "tools" / "finetune_cv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetune_cv_join_runs_summarises_both_calls_runs_as_summarize_does():
    tool = _finetune_cv_tool()
    rng = np.random.default_rng(3)

    def run(seed, fold):
        frozen, finetuned = rng.choice([0.7, 0.75, 0.8, 0.85], size=2)
        return {"seed": seed, "fold": fold, "frozen": frozen, "finetuned": finetuned,
                "difference": finetuned - frozen, "weight_change": 0.001}

    def row(runs, wall, peak, command):
        return {"setting": "default", "runs": runs, "summary": {}, "wall_seconds": wall, "cpu_seconds": wall / 2,
                "peak_rss_mb": peak, "peak_rss_children_mb": 0, "command": command, "max_runs": 4,
                "protocol": f"kfold x seeds {sorted({r['seed'] for r in runs})}, {len(runs)} runs; backbone yamnet"}

    earlier = row([run(0, 0), run(0, 1), run(1, 0), run(1, 1)], 100.0, 900, "first")
    later = row([run(2, 0), run(2, 1)], 60.0, 1200, "second")
    joined = tool.join_runs(earlier, later)
    frame = pd.DataFrame(earlier["runs"] + later["runs"])
    assert [(r["seed"], r["fold"]) for r in joined["runs"]] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    for stage in ("frozen", "finetuned", "difference"):
        assert joined["summary"][stage]["mean"] == pytest.approx(frame[stage].mean(), abs=1e-4)
        assert joined["summary"][stage]["std"] == pytest.approx(frame[stage].std(ddof=0), abs=1e-4)
        assert joined["summary"][stage]["n_runs"] == 6
    assert joined["wall_seconds"] == 160.0 and joined["peak_rss_mb"] == 1200 and joined["max_runs"] is None
    assert joined["command"] == "first; then second"
    assert joined["protocol"].startswith("kfold x seeds [0, 1, 2], 6 runs;")
    # A run both calls trained counts once, the later call's.
    again = tool.join_runs(earlier, row([{**earlier["runs"][0], "frozen": 0.1}], 1.0, 1, "third"))
    assert len(again["runs"]) == 4 and again["runs"][0]["frozen"] == 0.1


# ------------------------------------------------------------------------------------------ YAMNet

#: YAMNet's official layers that hold a trainable kernel: layer1's convolution, then a depthwise and a pointwise
#: convolution per separable layer.
def _yamnet_block_layers(number: int) -> list[str]:
    return ["layer1.conv"] if number == 1 else [f"layer{number}.depthwise_conv", f"layer{number}.pointwise_conv"]


@pytest.fixture(scope="session")
def yamnet_weights(tmp_path_factory):
    """Random YAMNet weights whose batch norms are calibrated on log-mel-like patches (each layer's moving
    mean and variance set to its input's statistics), saved as a ``.weights.h5`` file: plain random
    weights shrink the activations to ~1e-19 by layer 14, too small for a training step to move a weight."""
    import keras

    from genrelib import yamnet

    network = yamnet.YAMNet(seed=5)
    x = np.random.default_rng(5).normal(-3.0, 1.5, (8, 96, 64)).astype(np.float32)
    for layer in network.layers:
        if type(layer).__name__ == "BatchNormalization":
            inputs = keras.Model(network.input, layer.input)(x, training=False).numpy()
            axes = tuple(range(inputs.ndim - 1))
            beta, _, _ = layer.get_weights()
            layer.set_weights([beta, inputs.mean(axis=axes), inputs.var(axis=axes) + 1e-3])
    path = tmp_path_factory.mktemp("yamnet_weights") / "calibrated.weights.h5"
    network.save_weights(path)
    return path


def test_yamnet_blocks_are_its_official_layers_top_first():
    backbone = finetune.load_backbone("yamnet", weights="random")
    assert backbone.model.output.shape[1:] == (1024,) and not backbone.model.trainable_weights
    assert backbone.patch_shape == (96, 64) and backbone.sample_rate == 16000
    assert len(backbone.blocks) == 14
    table = finetune.block_table(backbone)
    assert list(table["layers"]) == [", ".join(_yamnet_block_layers(n)) for n in range(14, 0, -1)]
    # layer14: 3x3 depthwise on 1024 channels + 1x1 pointwise 1024 -> 1024 (no biases: batch norm follows).
    assert table["weights"].iloc[0] == 3 * 3 * 1024 + 1024 * 1024
    assert table["weights"].iloc[-1] == 3 * 3 * 1 * 32
    assert finetune.unfreeze_top(backbone, unfreeze=1) == _yamnet_block_layers(14)
    assert finetune.unfreeze_top(backbone, unfreeze=2) == _yamnet_block_layers(13) + _yamnet_block_layers(14)
    trained = finetune.unfreeze_top(backbone, unfreeze="all")
    assert sorted(trained) == sorted(name for n in range(1, 15) for name in _yamnet_block_layers(n))
    norms = [layer for layer in backbone.model.layers if type(layer).__name__ == "BatchNormalization"]
    assert len(norms) == 27 and not any(layer.trainable for layer in norms)
    with pytest.raises(ParameterError, match="unfreeze=15"):
        finetune.unfreeze_top(backbone, unfreeze=15)


@pytest.mark.parametrize("unfreeze, cut_shape", [
    (1, (3, 2, 1024)),  # layer13's output (stride 2 at layers 1, 3, 5, 7, 13: 96 x 64 -> 3 x 2)
    (2, (6, 4, 512)),  # layer12's output
])
def test_yamnet_split_is_exact(unfreeze, cut_shape, rng):
    backbone = finetune.load_backbone("yamnet", weights="random")
    finetune.unfreeze_top(backbone, unfreeze=unfreeze)
    bottom, top = finetune.split_backbone(backbone.model)
    assert tuple(bottom.outputs[0].shape[1:] if isinstance(bottom.outputs, list) else bottom.outputs.shape[1:]) \
        == cut_shape
    x = rng.normal(-3.0, 1.0, (3, 96, 64)).astype(np.float32)
    np.testing.assert_allclose(top(bottom(x, training=False), training=False).numpy(),
                               backbone.model(x, training=False).numpy(), rtol=1e-5, atol=1e-5)


def test_yamnet_train_step_changes_exactly_the_unfrozen_weights(rng, yamnet_weights):
    backbone = finetune.load_backbone("yamnet", weights=yamnet_weights)
    finetune.unfreeze_top(backbone, unfreeze=1)
    x = rng.normal(-3.0, 1.0, (2, 2, 96, 64)).astype(np.float32)  # 2 clips x 2 patches
    model, before, after = _one_step(backbone, _head(backbone, 2), x)
    changed = {id(v): not np.array_equal(old, new) for v, old, new in zip(model.weights, before, after)}
    for layer in backbone.model.layers:
        for variable in layer.weights:
            assert changed[id(variable)] == (layer.name in _yamnet_block_layers(14)), f"{variable.path}"


def test_yamnet_embedding_checksum_is_the_backends(monkeypatch, tmp_path):
    """With the official weights the backbone is the ``yamnet`` embedding backend's network, same checksum."""
    from genrelib import yamnet

    if yamnet.default_tflite_path() is None:
        pytest.skip("no YAMNet TF-Lite file to convert")
    backbone = finetune.load_backbone("yamnet")
    embedder = yamnet.YAMNetBackend()
    assert backbone.weights_checksum == embedder.weights_checksum() == yamnet.TFLITE_SHA256
    patches = np.random.default_rng(0).normal(-3.0, 1.0, (2, 96, 64)).astype(np.float32)
    np.testing.assert_allclose(backbone.model(patches, training=False).numpy(), embedder.embed_patches(patches),
                               rtol=1e-5, atol=1e-6)


def test_yamnet_fine_tune_run(clips, tmp_path, yamnet_weights):
    index, split = clips
    run_dir = finetune.fine_tune(split, index, backbone="yamnet", weights=yamnet_weights, unfreeze=1,
                                 run_dir=tmp_path / "run", **RUN)
    run = finetune.load_run(run_dir)
    assert run["meta"]["trained_layers"] == _yamnet_block_layers(14)
    assert set(run["meta"]["weight_change"]) == set(_yamnet_block_layers(14))
    assert all(change > 0 for change in run["meta"]["weight_change"].values())
    assert run["meta"]["n_patches"] == 6  # 3.2 s at 16 kHz: 1 + ceil((51 200 - 15 600) / 7680) patches of 0.96 s
    model, backbone = finetune.load_finetuned(run_dir)
    predictions = run["predictions"]
    test = predictions[(predictions["stage"] == "finetuned") & (predictions["side"] == "test")]
    paths = index.set_index("track_id").loc[test["track_id"], "path"]
    table = finetune.patch_dataset(pd.DataFrame({"path": paths}), backbone=backbone, progress=False)
    x = finetune.load_patches(table, n_patches=model.input.shape[1])
    assert x.shape == (len(test), 6, 96, 64)
    np.testing.assert_allclose(model.predict(x, verbose=0), test[[f"p_{g}" for g in GENRES]], atol=1e-4)


def test_a_collection_run_loads_with_its_own_labels(clips, tmp_path):
    """A run on a collection's three labels loads as a three-output model (it was built with GTZAN's ten)."""
    from genrelib import data

    index, _ = clips
    names = {"blues": "calm", "jazz": "dance", "rock": "loud"}
    three = index[index["genre"].isin(list(names))].assign(genre=lambda frame: frame["genre"].map(names))
    three.attrs["labels"] = ("calm", "dance", "loud")
    split = data.kfold(three, k=3, seed=0, valid_size=0.5)[0]
    run_dir = finetune.fine_tune(split, three, run_dir=tmp_path / "run", **RUN)
    assert finetune.load_run(run_dir)["meta"]["genres"] == ["calm", "dance", "loud"]
    model, _ = finetune.load_finetuned(run_dir)
    assert model.output.shape[-1] == 3
