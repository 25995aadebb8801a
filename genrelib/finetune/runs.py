"""Fine-tuning runs: one split into a run directory, a protocol of splits and seeds, reading and summarising runs.

Notebook: 06_fine_tuning. CLI: ``genrelib finetune``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..checks import one_of, positive_int, positive_number
from ..collection import labels_of
from ..config import GENRES, Config
from ..errors import DataError, ParameterError
from ..storage import atomic_path, atomic_write_csv, atomic_write_json, file_digest, output_dir, params_key
from ..train import make_splits, package_versions, read_meta, set_determinism
from . import cache, fit
from .backbones import Backbone, load_backbone, n_blocks, unfreeze_top
from .cache import SIDES, bottom_features, features_folder, item_table, patch_dataset, patches_folder, patches_key, \
    stack_clips
from .cut import build_end_to_end, clip_model, cut_description, split_backbone
from .estimate import describe_plan, estimate_seconds

__all__ = ["fine_tune", "run_protocol", "load_run", "summarize", "summary_statistics", "load_finetuned"]

#: Files a run directory may hold beside its stage folders (only these are removed when a run starts afresh;
#: ``checkpoint_<stage>.npz`` are the stage checkpoints of the hand-written loop before FIT_VERSION).
RUN_FILES = ("meta.json", "config.json", "split.json", "history.csv", "predictions.csv", "finetuned.weights.h5",
             "checkpoint_frozen.npz", "checkpoint_finetuned.npz")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _prepare_run_dir(run_dir: Path, key: str, *, overwrite: bool) -> bool:
    """True when ``run_dir`` already holds this complete run. A run of other settings is never mixed in."""
    meta = read_meta(run_dir)
    if meta is not None and not overwrite:
        if meta.get("key") != key:
            raise ParameterError(f"{run_dir} holds a fine-tuning run of other settings (key {meta.get('key')}, "
                                 f"this one {key}); pass another run_dir or overwrite=True")
        return meta.get("status") == "complete"
    if overwrite or meta is None:
        for name in RUN_FILES:  # a fresh start: no file of an earlier attempt survives beside the new ones
            (run_dir / name).unlink(missing_ok=True)
        for stage in fit.STAGES:
            shutil.rmtree(fit.stage_folder(run_dir, stage=stage), ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return False


def _with_digests(table: pd.DataFrame, backbone: Backbone, bottom) -> pd.DataFrame:
    """Add each clip's audio sha256 and whether its patches / frozen-layer outputs are cached."""
    table = table.copy()
    table["audio_sha256"] = [file_digest(path) for path in table["path"]]
    patches = [patches_folder(backbone) / f"{patches_key(backbone, d)}.npz" for d in table["audio_sha256"]]
    table["patches_cached"] = [p.exists() for p in patches]
    if bottom is None:
        table["features_cached"] = True
    else:
        folder = features_folder(backbone, bottom)
        table["features_cached"] = [(folder / p.name).exists() for p in patches]
    return table


def _side_arrays(table: pd.DataFrame, paths: list, keys: list[str], *, n_patches: int, pad_mode: str,
                 labels: tuple[str, ...] = GENRES) -> dict:
    """Inputs and labels per side: ``{side: (list of arrays [shape=(n, n_patches, ...)], labels)}``."""
    arrays = {}
    for side in SIDES:
        rows = np.flatnonzero((table["side"] == side).to_numpy())
        if len(rows):
            y = np.array([labels.index(g) for g in table["genre"].iloc[rows]], dtype=np.int64)
            arrays[side] = (stack_clips([paths[i] for i in rows], keys, n_patches=n_patches, pad_mode=pad_mode), y)
    return arrays


def _prediction_rows(table: pd.DataFrame, probabilities: np.ndarray, stage: str,
                     labels: tuple[str, ...] = GENRES) -> pd.DataFrame:
    frame = table.loc[table["side"].isin(["valid", "test"]), ["item_id", "track_id", "genre", "side"]]
    frame = frame.reset_index(drop=True).assign(stage=stage)
    frame["predicted"] = [labels[i] for i in probabilities.argmax(axis=1)]
    frame[[f"p_{g}" for g in labels]] = probabilities
    return frame


def fine_tune(split, index: pd.DataFrame, *, augmented: pd.DataFrame | None = None, backbone: str = "musicnn-msd",
              unfreeze: int | str = 1, config: Config = Config(), seed: int | None = None,
              head_epochs: int | None = None, finetune_epochs: int = 10, finetune_learning_rate: float = 1e-5,
              weights: str | os.PathLike | None = None, run_dir: str | os.PathLike | None = None,
              overwrite: bool = False, progress: bool = True, describe: bool | None = None) -> Path:
    """Fine-tune a backbone and the paper's CNN on one split: head only, then the top blocks too.

    Notebook: 06_fine_tuning. CLI: ``genrelib finetune``.

    Parameters
    ----------
    split : genrelib.data.Split
        Tracks per side; validation tracks pick each stage's best epoch, test tracks are only predicted.
    index : pd.DataFrame
        Track index (``track_id``, ``genre``, ``path``).
    augmented : pd.DataFrame, optional
        Augmentation manifest of ``split`` (:func:`genrelib.augment.augment_split`); required when
        ``config.augment_training``.
    backbone : str
        A key of :data:`BACKBONES` (default ``"musicnn-msd"``, whose weights install offline).
    unfreeze : int >= 0 or "all"
        Blocks of the backbone that train in stage 2, counted from the top. 1 (default) fits a CPU: on
        musicnn it is the 200-unit dense layer (301 k of 792 k weights). ``"all"`` fine-tunes everything
        on the log-mel patches themselves: meant for a GPU. 0 lets only the head continue (a control).
    config : Config
        ``model`` builds the head; ``train`` gives optimizer, rho, batch size, stage 1's learning rate and
        epochs (Table 1) and ``checkpoint`` ("best": lowest validation loss, per stage); ``augment_training``.
    seed : int, optional
        Seeds the head's weights, dropout and batch order (default ``config.seed``).
    head_epochs : int > 0, optional
        Stage 1 epochs (default ``config.train.epochs``, 30).
    finetune_epochs : int > 0
        Stage 2 epochs.
    finetune_learning_rate : float > 0
        Stage 2's learning rate, for the unfrozen blocks and the head alike (default 1e-5, 100 x below
        Table 1's, so the pretrained weights move little).
    weights : None, "random" or path
        VGGish only, see :func:`load_backbone`.
    run_dir : path, optional
        Default ``output_dir("runs")/finetune/<backbone>-unfreeze<N>-<key>``. A complete run of the same
        settings is returned as it is; an unfinished one resumes after its last finished epoch; one of other
        settings raises :class:`ParameterError` unless ``overwrite``.
    progress : bool
        Show progress bars.
    describe : bool, optional
        Print the plan with its time estimate before training (default: as ``progress``;
        :func:`run_protocol` prints it for its first run only, since the others share it).

    Returns
    -------
    Path
        ``run_dir`` with ``meta.json`` (settings, accuracies, best epochs, wall and CPU seconds, peak memory),
        ``config.json``, ``split.json``, ``history.csv`` and ``predictions.csv`` (both stages, column
        ``stage``), ``finetuned.weights.h5`` (:func:`load_finetuned`) and a folder per stage, ``frozen/`` and
        ``finetuned/`` (:func:`genrelib.finetune.fit.stage_folder`).

    Notes
    -----
    Log-mel patches are cached under ``cache_dir("patches")`` and the frozen layers' outputs under
    ``cache_dir("finetune_features")``, so the front end and the frozen part of the network run once per
    clip whatever the number of epochs, folds and seeds. The leakage guard checks the training clips before
    each stage. Every epoch ends with Keras' backup of the stage (``BackupAndRestore``), which a resumed run
    continues from.
    """
    seed, epochs, learning_rate, select = _check_schedule(config, seed, head_epochs, finetune_epochs,
                                                          finetune_learning_rate)
    if config.augment_training and augmented is None:
        raise ParameterError("config.augment_training is on but no augmented clips were given; pass augmented=... "
                             "(genrelib.augment.augment_split) or set augment_training=False")
    table = item_table(split, index, augmented=augmented if config.augment_training else None)
    model = load_backbone(backbone, weights=weights)
    trained = unfreeze_top(model, unfreeze=unfreeze)
    bottom, top = split_backbone(model.model)
    table = _with_digests(table, model, bottom)
    key = _run_key(model, unfreeze=unfreeze, config=config, seed=seed, epochs=epochs, learning_rate=learning_rate,
                   split=split, table=table)
    unfrozen = n_blocks(model, unfreeze=unfreeze)
    run_dir = Path(run_dir) if run_dir is not None else \
        output_dir("runs") / "finetune" / f"{backbone}-unfreeze{unfrozen}-{key[:8]}"
    if _prepare_run_dir(run_dir, key, overwrite=overwrite):
        return run_dir
    started, cpu_started = time.perf_counter(), time.process_time()
    seconds = estimate_seconds(model, bottom, top, config=config, table=table, epochs=epochs)
    if progress if describe is None else describe:
        print(describe_plan(seconds, backbone=model, trained=trained, table=table, unfreeze=unfreeze), flush=True)
    meta = {"status": "running", "kind": "finetune", "key": key, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "backbone": backbone, "weights_checksum": model.weights_checksum,
            "weights": None if weights is None else str(weights), "unfreeze": unfrozen,
            "trained_layers": trained, "seed": seed, "protocol": split.protocol, "split_seed": split.seed,
            "fold": split.fold, "head_epochs": epochs[0], "finetune_epochs": epochs[1],
            "learning_rates": [config.train.learning_rate, learning_rate],
            "clips": table["side"].value_counts().to_dict(),
            "augmented_clips": int((table["method"] != "original").sum()),
            "estimate_seconds": {k: round(v, 1) for k, v in seconds.items()}, "versions": package_versions(),
            "host": platform.node(), "cpu_count": os.cpu_count()}
    config.to_json(run_dir / "config.json")
    split.to_json(run_dir / "split.json")
    atomic_write_json(run_dir / "meta.json", meta)
    outcome = _train_stages(table, model, bottom, top, config=config, seed=seed, epochs=epochs,
                            learning_rate=learning_rate, select=select, split=split, run_dir=run_dir,
                            progress=progress)
    # Times and memory of this process (a resumed run counts from its restart).
    meta.update(outcome, status="complete", wall_seconds=round(time.perf_counter() - started, 1),
                cpu_seconds=round(time.process_time() - cpu_started, 1), peak_rss_mb=round(_peak_rss_mb()))
    atomic_write_json(run_dir / "meta.json", meta)
    return run_dir


def _run_key(backbone: Backbone, *, unfreeze, config: Config, seed: int, epochs: tuple[int, int],
             learning_rate: float, split, table: pd.DataFrame) -> str:
    """What makes a run: the backbone's weights, what trains, the settings, the clips (by content) and the code."""
    return params_key({"backbone": backbone.name, "weights": backbone.weights_checksum,
                       "unfreeze": n_blocks(backbone, unfreeze=unfreeze), "config": config.keyed_settings(),
                       "seed": seed, "epochs": epochs, "finetune_learning_rate": learning_rate,
                       "split": dataclasses.asdict(split),
                       "items": sorted(zip(table["item_id"], table["audio_sha256"])),
                       "code": {"finetune": cache.FINETUNE_VERSION, "fit": fit.FIT_VERSION, **package_versions()}})


def _check_schedule(config: Config, seed, head_epochs, finetune_epochs, finetune_learning_rate) -> tuple:
    """(seed, (stage 1 epochs, stage 2 epochs), stage 2 learning rate, checkpoint choice), checked."""
    seed = config.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ParameterError(f"seed={seed!r} must be an integer")
    epochs = (positive_int(config.train.epochs if head_epochs is None else head_epochs, "head_epochs"),
              positive_int(finetune_epochs, "finetune_epochs"))
    learning_rate = positive_number(finetune_learning_rate, "finetune_learning_rate")
    positive_int(config.train.batch_size, "batch_size")
    select = one_of(getattr(config.train, "checkpoint", "best"), ("best", "last"), "checkpoint")
    return int(seed), epochs, learning_rate, select


def _guard(split, table: pd.DataFrame) -> None:
    """The leakage guard on exactly the clips that reach the next fit."""
    from ..augment import assert_no_leakage

    assert_no_leakage(split, table[table["side"] == "train"])


def _train_stages(table: pd.DataFrame, backbone: Backbone, bottom, top, *, config: Config, seed: int,
                  epochs: tuple[int, int], learning_rate: float, select: str, split, run_dir: Path,
                  progress: bool) -> dict:
    """Caches, then stage 1 (head on frozen embeddings), then stage 2 (top blocks + head); writes the results."""
    import keras

    from ..model import build_classifier

    clock = time.perf_counter()
    table = patch_dataset(table, backbone=backbone, progress=progress)
    if bottom is None:
        paths, keys = list(table["patches_path"]), ["patches"]
    else:
        paths = bottom_features(table, backbone=backbone, bottom=bottom, progress=progress)
        keys = [f"cut_{i}" for i in range(len(cut_description(bottom)))]
    originals = table[(table["side"] == "train") & (table["method"] == "original")]
    n_patches = int(np.median(originals["n_patches"]))
    # The network's outputs: GTZAN's ten, or a collection's labels (every one has training tracks in a split).
    labels = labels_of(table["genre"], table.attrs.get("labels"))
    data = _side_arrays(table, paths, keys, n_patches=n_patches, pad_mode=config.model.pad_mode, labels=labels)
    timing = {"prepare_seconds": round(time.perf_counter() - clock, 1)}
    # Stage 1 input: what the frozen backbone makes of each clip, computed once (top(bottom(x)) == backbone(x)).
    embedded = {side: ([cache.embed_clips(top, x) if top is not None else x[0]], y) for side, (x, y) in data.items()}
    evaluated = [side for side in ("valid", "test") if side in data]  # item_table lists valid before test
    train_batch = config.train.batch_size

    def run_stage(model, stage: str, inputs: dict, n_epochs: int, rate: float) -> tuple[dict, np.ndarray]:
        _guard(split, table)
        fit.compile_stage(model, train_config=config.train, learning_rate=rate)
        clock = time.perf_counter()
        info = fit.fit_stage(model, stage=stage, train=inputs["train"], valid=inputs.get("valid"), epochs=n_epochs,
                             batch_size=train_batch, seed=seed, select=select,
                             folder=fit.stage_folder(run_dir, stage=stage), progress=progress)
        timing[f"{stage}_seconds"] = round(time.perf_counter() - clock, 1)
        probabilities = np.concatenate([fit.predict_probabilities(model, inputs[side][0]) for side in evaluated])
        return info, probabilities

    set_determinism(seed)
    head = build_classifier(n_patches=n_patches, embedding_dim=backbone.embedding_dim, config=config.model,
                            normalization_data=embedded["train"][0][0], n_classes=len(labels))
    # Each stage compiles its own wrapper, so the head itself carries no optimizer into the saved weights.
    head_only = keras.Model(head.inputs, head.outputs, name="head_only")
    frozen, frozen_probabilities = run_stage(head_only, "frozen", embedded, epochs[0], config.train.learning_rate)
    predictions = _prediction_rows(table, frozen_probabilities, "frozen", labels)
    stage_two = keras.Model(head.inputs, head.outputs, name="head_continued") if top is None else \
        clip_model(top, head, n_patches=n_patches, name="finetune")
    pretrained = {layer.name: [np.array(w.numpy()) for w in layer.trainable_weights]
                  for layer in backbone.model.layers if layer.trainable_weights}
    finetuned, probabilities = run_stage(stage_two, "finetuned", embedded if top is None else data, epochs[1],
                                         learning_rate)
    predictions = pd.concat([predictions, _prediction_rows(table, probabilities, "finetuned", labels)],
                            ignore_index=True)
    atomic_write_csv(run_dir / "predictions.csv", predictions)
    history = pd.DataFrame(frozen["history"] + finetuned["history"])
    atomic_write_csv(run_dir / "history.csv", history)
    with atomic_path(run_dir / "finetuned.weights.h5") as tmp:
        build_end_to_end(backbone, head).save_weights(tmp)
    return {"n_patches": n_patches, "genres": list(labels), "test_accuracy": _test_accuracy(predictions),
            "timing": timing,
            "best_epoch": {"frozen": frozen["best_epoch"], "finetuned": finetuned["best_epoch"]},
            "weight_change": {name: _relative_change(before, backbone.model.get_layer(name).trainable_weights)
                              for name, before in pretrained.items()}}


def _test_accuracy(predictions: pd.DataFrame) -> dict[str, float]:
    """Accuracy on the test clips of each stage, by :func:`genrelib.evaluate.prediction_metrics` (scikit-learn)."""
    from ..evaluate import prediction_metrics

    test = predictions[predictions["side"] == "test"]
    return {stage: prediction_metrics(rows)["accuracy"] for stage, rows in test.groupby("stage")}


def _relative_change(before: list[np.ndarray], after) -> float:
    """How far fine-tuning moved a layer: ||w - w_pretrained|| / ||w_pretrained|| over all its weights."""
    difference = sum(float(np.sum((np.asarray(w.numpy()) - b) ** 2)) for b, w in zip(before, after))
    return float(np.sqrt(difference / sum(float(np.sum(b ** 2)) for b in before)))


def run_protocol(index: pd.DataFrame, *, backbone: str = "musicnn-msd", unfreeze: int | str = 1,
                 config: Config = Config(), head_epochs: int | None = None, finetune_epochs: int = 10,
                 finetune_learning_rate: float = 1e-5, weights: str | os.PathLike | None = None,
                 runs_dir: str | os.PathLike | None = None, overwrite: bool = False,
                 progress: bool = True, max_runs: int | None = None, skip_runs: int = 0) -> list[Path]:
    """:func:`fine_tune` on every split of ``config.protocol`` for ``config.train.n_seeds`` seeds.

    Notebook: 06_fine_tuning. CLI: ``genrelib finetune``.

    The splits are :func:`genrelib.train.make_splits`' (the classifier's, so frozen and fine-tuned runs
    share folds and seeds with ``genrelib train``); augmented copies are drawn with ``config.seed`` for
    every split, as the pipeline does, so each track's copies are made and cached once.

    ``max_runs`` runs only the first ``max_runs`` (seed, split) pairs, in order (seed 0's folds first): a subset
    that fits the time at hand. The group folder does not depend on it, so a later call with more runs (or
    none) reuses the finished ones and adds the rest. ``skip_runs`` leaves out the first ``skip_runs`` of them
    (after ``max_runs``): the runs another call (or another machine) trains, e.g. ``skip_runs=10`` for seed 2 of
    5 folds x 3 seeds.

    Returns
    -------
    list of Path
        Run directories ``<runs_dir>/finetune-<protocol>-<backbone>-unfreeze<N>-<aug|noaug>-<key>/seed<S>-fold<F>``
        (default ``runs_dir``: ``output_dir("runs")``; ``key`` hashes the other settings, so a change starts a
        new folder and the same settings resume); :func:`summarize` tabulates them.
    """
    n_seeds = positive_int(config.validate().train.n_seeds, "n_seeds")
    jobs = [(seed, split) for seed in range(config.seed, config.seed + n_seeds)
            for split in make_splits(index, protocol=config.protocol, seed=seed, config=config)]
    if max_runs is not None:
        jobs = jobs[:positive_int(max_runs, "max_runs")]
    if skip_runs:
        if positive_int(skip_runs, "skip_runs") >= len(jobs):
            raise ParameterError(f"skip_runs={skip_runs} leaves none of the {len(jobs)} (seed, split) runs")
        jobs = jobs[skip_runs:]
    settings = {"config": config.keyed_settings(), "weights": weights,
                "epochs": [head_epochs, finetune_epochs], "finetune_learning_rate": finetune_learning_rate,
                "code": {"finetune": cache.FINETUNE_VERSION, "fit": fit.FIT_VERSION, **package_versions()}}
    if config.augment_training:
        from ..augment import code_versions

        settings["augmentation"] = {"seed": int(config.seed), **code_versions()}
    group = Path(runs_dir or output_dir("runs")) / (f"finetune-{config.protocol}-{backbone}-unfreeze{unfreeze}-"
                                                    f"{'aug' if config.augment_training else 'noaug'}-"
                                                    f"{params_key(settings, length=8)}")
    if progress:
        print(f"{len(jobs)} run(s): protocol {config.protocol}, seeds {config.seed}..{config.seed + n_seeds - 1}, "
              f"into {group}", flush=True)
    run_dirs, described = [], False
    for seed, split in jobs:
        run_dir = group / f"seed{seed}-fold{split.fold or 0}"
        # The plan is the same for every run of the group: print it once, before the first run that trains.
        describe = progress and not described and (read_meta(run_dir) or {}).get("status") != "complete"
        described = described or describe
        augmented = None
        if config.augment_training:
            from ..augment import augment_split

            augmented = augment_split(index, split, config=config.augment, seed=config.seed, progress=progress)
        run_dirs.append(fine_tune(split, index, augmented=augmented, backbone=backbone, unfreeze=unfreeze,
                                  config=config, seed=seed, head_epochs=head_epochs, finetune_epochs=finetune_epochs,
                                  finetune_learning_rate=finetune_learning_rate, weights=weights,
                                  run_dir=run_dir, overwrite=overwrite, progress=progress, describe=describe))
    return run_dirs


def load_run(run_dir: str | os.PathLike) -> dict:
    """A complete fine-tuning run: ``meta`` (dict), ``config`` (Config), ``split`` (Split), ``history`` and
    ``predictions`` (DataFrames, column ``stage``) and ``run_dir``. :class:`DataError` when incomplete."""
    from ..data import Split

    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    if meta is None or meta.get("status") != "complete":
        raise DataError(f"{run_dir}: not a complete fine-tuning run (no meta.json with status 'complete'); "
                        f"run genrelib.finetune.fine_tune or `genrelib finetune` (it resumes)")
    return {"run_dir": run_dir, "meta": meta, "config": Config.from_json(run_dir / "config.json"),
            "split": Split.from_json(run_dir / "split.json"), "history": pd.read_csv(run_dir / "history.csv"),
            "predictions": pd.read_csv(run_dir / "predictions.csv")}


def summary_statistics(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows ``frozen``, ``finetuned``, ``difference`` of ``runs`` (one row per run, as :func:`summarize` gives):
    ``mean``, ``std`` (ddof=0), ``min``, ``max``, ``n_runs``."""
    columns = ["frozen", "finetuned", "difference"]
    return pd.DataFrame({"mean": runs[columns].mean(), "std": runs[columns].std(ddof=0),
                         "min": runs[columns].min(), "max": runs[columns].max(), "n_runs": len(runs)})


def summarize(run_dirs: Sequence[str | os.PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test accuracy of each run before and after fine-tuning, and their mean and spread.

    Notebook: 06_fine_tuning.

    Returns
    -------
    runs : pd.DataFrame
        One row per run: ``seed``, ``fold``, ``n_test``, ``frozen`` and ``finetuned`` test accuracy,
        ``difference`` (finetuned - frozen, same clips), ``best_epoch_frozen``, ``best_epoch_finetuned``,
        ``weight_change`` (the largest relative change ``||w - w_pretrained|| / ||w_pretrained||`` of a
        fine-tuned backbone layer; 0 when only the head trained).
    table : pd.DataFrame
        Rows ``frozen``, ``finetuned``, ``difference``: ``mean``, ``std`` (over runs, ddof=0, as
        :mod:`genrelib.baselines`), ``min``, ``max``, ``n_runs``; ``table.attrs["protocol"]`` says what they
        were computed on (protocol, backbone, unfreeze, epochs, learning rates, augmentation).
    """
    if not run_dirs:
        raise ParameterError("run_dirs is empty: nothing to summarize")
    rows = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        meta, test = run["meta"], run["predictions"][run["predictions"]["side"] == "test"]
        accuracy = _test_accuracy(run["predictions"])
        rows.append({"seed": meta["seed"], "fold": meta["fold"], "n_test": int((test["stage"] == "frozen").sum()),
                     "frozen": accuracy["frozen"], "finetuned": accuracy["finetuned"],
                     "difference": accuracy["finetuned"] - accuracy["frozen"],
                     "best_epoch_frozen": meta["best_epoch"]["frozen"],
                     "best_epoch_finetuned": meta["best_epoch"]["finetuned"],
                     "weight_change": max(meta["weight_change"].values(), default=0.0)})
    runs = pd.DataFrame(rows)
    table = summary_statistics(runs)
    first = load_run(run_dirs[0])["meta"]
    trained = ", ".join(first["trained_layers"]) or "head only"
    table.attrs["protocol"] = (f"{first['protocol']} x seeds {sorted(set(runs['seed']))}, {len(runs)} runs; backbone "
                               f"{first['backbone']}, unfreeze {first['unfreeze']} ({trained}); "
                               f"stage 1 {first['head_epochs']} epochs at lr {first['learning_rates'][0]}, stage 2 "
                               f"{first['finetune_epochs']} epochs at lr {first['learning_rates'][1]}; "
                               f"{first['augmented_clips']} augmented training clips per run")
    return runs, table


def load_finetuned(run_dir: str | os.PathLike):
    """The fine-tuned end-to-end model of a run, and its backbone (for :meth:`Backbone.patches`).

    Notebook: 06_fine_tuning.

    Returns
    -------
    model : keras.Model
        Log-mel patches [shape=(batch, n_patches, *patch_shape)] -> genre probabilities [shape=(batch, n_labels)]
        (GTZAN's ten, or the collection's labels the run was trained on: ``meta["genres"]``).
    backbone : Backbone
    """
    from ..model import build_classifier

    run = load_run(run_dir)
    meta = run["meta"]
    backbone = load_backbone(meta["backbone"], weights=meta.get("weights"))
    if backbone.weights_checksum != meta["weights_checksum"]:
        raise DataError(f"{run_dir}: fine-tuned from weights {meta['weights_checksum'][:16]}..., but "
                        f"{meta['backbone']} now loads {backbone.weights_checksum[:16]}...")
    head = build_classifier(n_patches=meta["n_patches"], embedding_dim=backbone.embedding_dim,
                            n_classes=len(meta.get("genres") or GENRES), config=run["config"].model)
    model = build_end_to_end(backbone, head)
    model.load_weights(Path(run_dir) / "finetuned.weights.h5")
    return model, backbone
