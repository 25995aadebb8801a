"""The whole pipeline in one call: data -> augment -> embed -> train -> evaluate -> figures and results.

Notebooks: 04_cnn_training, 05_evaluation. CLI: ``genrelib run [--config FILE] [--figures-only]``.

Each stage is a public function of its module; this one only joins them and records what produced each
figure. Every stage caches (embeddings, augmented audio, complete run directories), so a second run of the
same configuration recomputes nothing and an interrupted one resumes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from .config import GENRES, Config
from .errors import DataError, ParameterError
from .plots import write_figures_readme
from .storage import output_dir

__all__ = ["load_tracks", "protocols_for", "make_augmenter", "evaluate_runs", "run_pipeline", "latest_group",
           "regenerate_figures", "write_figures_readme"]


def load_tracks(root: str | os.PathLike | None = None, *, backend: Any = "auto", per_genre: int | None = None,
                on_error: str = "raise", allow_download: bool = False, allow_synthetic: bool = False,
                progress: bool = True, labels=None):
    """Find and index the data, embed every track (cached), and describe the data for run records.

    Notebook: 04_cnn_training.

    Parameters
    ----------
    root : path, optional
        GTZAN (:func:`genrelib.data.load_gtzan`), or any folder-per-label collection or CSV manifest
        (:func:`genrelib.collection.load_collection`); default :func:`genrelib.data.resolve_root`.
    labels : sequence of str, optional
        ``Config.data.labels``: of a collection, only these labels, in this order.
    per_genre : int > 0, optional
        Keep only the first ``per_genre`` tracks of each genre (:func:`genrelib.data.example_tracks`):
        the notebooks' quick mode.
    on_error : {"raise", "skip"}
        As for :func:`genrelib.data.load_gtzan` (``Config.data.on_error``); skipped tracks are named in
        ``data["skipped"]``, which every run and results table carries.

    Returns
    -------
    tracks : pd.DataFrame
        The index (:func:`genrelib.data.load_gtzan`) plus ``embedding_path``, ``n_patches``, ``error``.
    data : dict
        ``name`` (folder name), ``root``, ``source`` (how it was found), ``n_tracks``, ``checksum``,
        ``labels`` (the label set in output order, GTZAN's ten or the collection's), ``kind`` ("gtzan" or
        "collection") and, when tracks were left out, ``skipped`` ("jazz.00054 (unreadable)").
    model : backend object
    """
    from . import data as gdata
    from .embed import embed_dataset, get_backend
    from .train import data_checksum

    root, source = gdata.resolve_root(root, allow_download=allow_download, allow_synthetic=allow_synthetic)
    index = gdata.load_data(root, labels=labels, on_error=on_error)
    label_set = index.attrs["labels"]
    skipped = gdata.skipped_tracks(index)
    if per_genre is not None:
        index = gdata.example_tracks(index, per_genre=per_genre)
    model = get_backend(backend) if isinstance(backend, str) else backend
    tracks = embed_dataset(index, backend=model, progress=progress)
    facts = {"name": Path(root).name if source != "synthetic" else "SYNTHETIC (not music)", "root": str(root),
             "source": source, "n_tracks": len(index), "checksum": data_checksum(index),
             "labels": list(label_set), "kind": "collection" if "group" in index.columns else "gtzan"}
    if skipped:
        facts["skipped"] = skipped
    return tracks, facts, model


def protocols_for(tracks: pd.DataFrame, *, quick: bool = False) -> list[str]:
    """The evaluation protocols that fit some data, in the order notebook 05 runs them.

    Notebook: 05_evaluation.

    GTZAN: ``paper``, ``kfold`` and ``artist`` (Sturm's artist index), and ``fault_filtered`` on the full set
    (1000 tracks; its lists keep only 4 test tracks of the mini set). A collection (an index with ``group``,
    :func:`genrelib.collection.load_collection`): ``paper`` and ``kfold``, as ``genrelib run`` allows, and
    ``artist`` only when its manifest gives groups; ``fault_filtered`` is GTZAN's own lists and never fits.

    Parameters
    ----------
    tracks : pd.DataFrame
        The index in use (:func:`load_tracks`).
    quick : bool
        Quick mode (CI): ``paper`` and, where it fits, ``artist`` only (a few tracks per label are too few
        for k folds).

    Returns
    -------
    list of str
    """
    collection = "group" in tracks.columns
    with_artists = not collection or bool(tracks["artist"].notna().any())
    protocols = ["paper"] if quick else ["paper", "kfold"]
    protocols += ["artist"] if with_artists else []
    if not quick and not collection and len(tracks) == 1000:
        protocols.append("fault_filtered")
    return protocols


def make_augmenter(index: pd.DataFrame, *, config: Config = Config(), backend: Any = "auto",
                   progress: bool = True) -> Callable:
    """A function Split -> embedded augmentation manifest, for :func:`genrelib.train.run_protocol`.

    Notebook: 04_cnn_training.

    It augments only the split's training tracks (``genrelib.augment.augment_split`` with
    ``config.augment``) and embeds the augmented copies (:func:`genrelib.embed.embed_dataset`). The
    augmentation seed is ``config.seed`` for every split and repetition, so a track's copies are drawn once
    and cached, whichever fold it trains in.
    """
    from .embed import embed_dataset

    from .augment import augment_split, code_versions

    def augmented_for(split):
        manifest = augment_split(index, split, config=config.augment, seed=config.seed, progress=progress)
        copies = manifest[manifest["method"] != "original"]
        return embed_dataset(copies, backend=backend, progress=progress)

    # What decides the clips besides the configuration: part of the key of every run trained on them.
    augmented_for.provenance = {"seed": int(config.seed), **code_versions()}
    return augmented_for


def evaluate_runs(run_dirs: list[Path], tracks: pd.DataFrame, *, baseline: bool = True,
                  results_dir: str | os.PathLike | None = None) -> list[dict]:
    """Summaries of a group of runs (the CNN and, with ``baseline``, the clip-mean baseline on the same
    folds), written to the results tables.

    Notebook: 05_evaluation.
    """
    from . import evaluate

    summaries = [evaluate.summarize_runs(run_dirs, model="cnn")]
    if baseline:
        evaluate.add_baseline(run_dirs, tracks)
        summaries.append(evaluate.summarize_runs(run_dirs, model="baseline"))
    evaluate.write_results(summaries, output_dir_=results_dir)
    return summaries


def run_pipeline(config: Config = Config(), *, root: str | os.PathLike | None = None,
                 protocols: Iterable[str] | None = None, runs_dir: str | os.PathLike | None = None,
                 allow_download: bool = True, allow_synthetic: bool = False, progress: bool = True,
                 figures: bool = True, jobs: int | str = "auto") -> dict:
    """Run every stage for each protocol; write results tables and Figs 1-6.

    Notebook: 05_evaluation. CLI: ``genrelib run``.

    Parameters
    ----------
    config : Config
        One configuration; ``config.protocol`` is replaced by each of ``protocols``.
    root : path, optional
        Data folder (default: :func:`genrelib.data.resolve_root`).
    protocols : iterable of str, optional
        Default: ``[config.protocol]``.
    runs_dir : path, optional
        Default ``output_dir("runs")``.
    figures : bool
        False leaves ``figures/`` as it is (e.g. rows of a second backend, whose runs the committed figures do
        not show).
    jobs : int >= 1 or "auto"
        Runs trained side by side in worker processes (:func:`genrelib.train.run_protocol`); the same numbers.

    Returns
    -------
    dict
        ``protocol -> {"runs": [...], "summaries": [...]}`` and ``"figures"``: the written figure files
        (none when ``figures`` is False or ``config.protocol``, the protocol the figures show, is not among
        ``protocols``).
    """
    from .train import PROTOCOLS, run_protocol

    config.validate()
    protocols = list(protocols or [config.protocol])
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            raise ParameterError(f"protocol={protocol!r} must be one of {', '.join(map(repr, PROTOCOLS))}")
    tracks, facts, model = load_tracks(root, backend=config.embed.backend, on_error=config.data.on_error,
                                       allow_download=allow_download, allow_synthetic=allow_synthetic,
                                       progress=progress, labels=config.data.labels or None)
    if facts["kind"] == "collection" and "fault_filtered" in protocols:  # before any embedding is trained on
        raise DataError(f"{facts['root']}: protocol 'fault_filtered' exists only for GTZAN (Kereliuk et al.'s "
                        f"track lists); on this collection use paper, kfold or (with manifest groups) artist")
    augmenter = make_augmenter(tracks, config=config, backend=model, progress=progress)
    outcome: dict[str, Any] = {}
    for protocol in protocols:
        variant = config.replace(protocol=protocol)
        runs = run_protocol(tracks, config=variant, backend=model, runs_dir=runs_dir, data=facts,
                            augmented_for=augmenter if variant.augment_training else None, progress=progress,
                            labels=facts["labels"], jobs=jobs)
        outcome[protocol] = {"runs": runs, "summaries": evaluate_runs(runs, tracks)}
    # Figs 4-6 show the configured protocol; drawing them from another would overwrite them with the wrong runs.
    drawn = figures and config.protocol in protocols
    outcome["figures"] = regenerate_figures(config, root=root, runs_dir=runs_dir) if drawn else []
    outcome["data"] = facts
    return outcome


# -------------------------------------------------------------------------------------------- figures

def latest_group(*, protocol: str, backend: str | None = None, augmented: bool | None = None,
                 runs_dir: str | os.PathLike | None = None, config: Config | None = None,
                 labels=None) -> list[Path]:
    """The runs of the most recently trained group matching a protocol (and backend, augmentation and, with
    ``config``, every setting a run's key holds: an experiment with other sizes or fewer seeds is never taken;
    with ``labels``, only runs over exactly those labels: GTZAN's figures are never drawn from a collection's
    runs, nor the reverse).

    A group is one folder of :func:`genrelib.train.run_protocol`. Raises :class:`DataError` when none matches.
    """
    from .train import find_runs, read_meta

    wanted = config.replace(protocol=protocol).keyed_settings() if config is not None else None
    groups: dict[Path, list[Path]] = {}
    for run_dir in find_runs(runs_dir):  # complete training runs; only their meta.json is needed here
        meta = read_meta(run_dir)
        if meta["protocol"] != protocol or (backend and meta["backend"]["name"] != backend) or \
                (augmented is not None and meta["augmented"] != augmented) or \
                (labels is not None and tuple(meta.get("genres") or GENRES) != tuple(labels)):
            continue
        if wanted is not None and Config.from_json(run_dir / "config.json").keyed_settings() != wanted:
            continue
        groups.setdefault(run_dir.parent, []).append(run_dir)
    if not groups:
        raise DataError(f"no complete runs of protocol {protocol!r}"
                        f"{f' with backend {backend!r}' if backend else ''}"
                        f"{' and these settings' if wanted is not None else ''} under "
                        f"{runs_dir or output_dir('runs', create=False)}: train first (genrelib train / run)")
    newest = max(groups, key=lambda g: max(r.joinpath("meta.json").stat().st_mtime for r in groups[g]))
    return sorted(groups[newest])


def regenerate_figures(config: Config = Config(), *, root: str | os.PathLike | None = None,
                       runs_dir: str | os.PathLike | None = None, figures_dir: str | os.PathLike | None = None,
                       progress: bool = False) -> list[Path]:
    """Redraw Figs 1-6 from the data and the stored runs, without training anything.

    Notebook: 05_evaluation. CLI: ``genrelib run --figures-only`` (``make figures``).

    - Fig 1 (waveforms) and Fig 3 (mel-spectrogram of the first disco track): from the audio, as in
      notebook 01.
    - Fig 2 (training clips per genre and augmentation method): from the augmentation manifest of the
      ``paper`` split of ``config.seed`` (augmented audio is cached, so this only re-reads it; skipped with
      a note when the augmentation stage is not installed).
    - Figs 4-6: from the newest group of complete runs of ``config.protocol`` with the configured backend,
      augmentation and settings (:func:`latest_group` with ``config``) - Fig 4 from its first run's saved
      network, Fig 5 from every run's history, Fig 6
      from every run's test predictions pooled.

    Writes ``figures/README.md`` saying what produced each figure. Returns the written files.
    """
    from . import audio, evaluate, plots
    from . import data as gdata
    from .embed import resolve_backend
    from .train import load_run

    # Find the runs before drawing (indexing the data is cheap: headers only): without them there is nothing
    # to redraw Figs 4-6 from, and the error should come before minutes of drawing.
    root, source = gdata.resolve_root(root)
    index = gdata.load_data(root, labels=config.data.labels or None, on_error=config.data.on_error)
    labels = index.attrs["labels"]
    runs = latest_group(protocol=config.protocol, backend=resolve_backend(config.embed.backend),
                        augmented=config.augment_training, runs_dir=runs_dir, config=config, labels=labels)
    folder = Path(figures_dir) if figures_dir else output_dir("figures")
    examples = gdata.example_tracks(index).set_index("genre")  # the clips notebook 01 shows
    skipped = gdata.skipped_tracks(index)
    data_label = f"{Path(root).name} ({len(index)} tracks{'; skipped: ' + skipped if skipped else ''}, found via " \
                 f"{source})"
    written, notes = [], {}
    sr = 22050
    waveforms = {genre: audio.load(row["path"], sr=sr) for genre, row in examples.iterrows()}
    written += plots.save_figure(plots.fig1_waveforms(waveforms, sr=sr, seconds=10), "fig1_waveforms",
                                 output_dir=folder)
    notes["fig1_waveforms"] = f"{data_label}: first 10 s of the first track of each label"
    # The paper's Fig 3 shows a disco track; a collection without disco shows its first label's first track.
    shown = "disco" if "disco" in examples.index else labels[0]
    track = examples.loc[shown, "track_id"]
    ax = plots.fig3_mel_spectrogram(waveforms[shown], sr=sr, title=f"Fig 3 - mel-spectrogram of {track}")
    written += plots.save_figure(ax.figure, "fig3_mel_spectrogram", output_dir=folder)
    notes["fig3_mel_spectrogram"] = f"{data_label}: {track}, 128 mel bands at {sr} Hz"
    written += _fig2(index, config, folder, notes, data_label, progress=progress)

    loaded = [load_run(run) for run in runs]
    summary = evaluate.summarize_runs(runs)
    facts = summary["facts"]
    label = f"{facts['data']}, {facts['protocol']}, {facts['backend']}, augmentation {facts['augmentation']}"
    import keras

    network = keras.models.load_model(runs[0] / "last.keras")
    written += plots.save_figure(plots.fig4_cnn_architecture(network).figure, "fig4_cnn_architecture",
                                 output_dir=folder)
    meta = loaded[0]["meta"]
    notes["fig4_cnn_architecture"] = (f"the network of run {runs[0].parent.name}/{runs[0].name} (input "
                                      f"{meta['n_patches']} patches x {meta['embedding_dim']} of {facts['backend']})")
    written += plots.save_figure(plots.fig5_training_curves([run["history"] for run in loaded], title=label),
                                 "fig5_training_curves", output_dir=folder)
    notes["fig5_training_curves"] = f"{label}: {facts['runs']} runs (seeds {facts['seeds']}), mean ± std per epoch"
    ax = plots.fig6_confusion_matrix(summary["confusion"], title=f"{facts['protocol']}, {facts['backend']}")
    written += plots.save_figure(ax.figure, "fig6_confusion_matrix", output_dir=folder)
    notes["fig6_confusion_matrix"] = f"{label}: test predictions of {facts['runs']} runs pooled " \
                                     f"(accuracy {summary['accuracy']['mean']:.3f} ± {summary['accuracy']['std']:.3f})"
    import matplotlib.pyplot as plt

    plt.close("all")
    written.append(write_figures_readme(notes, figures_dir=folder))
    return written


def _fig2(index, config: Config, folder: Path, notes: dict, data_label: str, *, progress: bool) -> list[Path]:
    from . import plots
    from .train import make_splits

    try:
        from .augment import augment_split
    except ImportError:
        notes["fig2_genre_distribution"] = "not drawn: the augmentation stage (genrelib.augment) is not installed"
        return []
    split = make_splits(index, protocol="paper", seed=config.seed, config=config)[0]
    manifest = augment_split(index, split, config=config.augment, seed=config.seed, progress=progress)
    ax = plots.fig2_genre_distribution(manifest)
    notes["fig2_genre_distribution"] = f"{data_label}: training tracks of the paper split (seed {config.seed}) " \
                                       f"and their augmented copies"
    return plots.save_figure(ax.figure, "fig2_genre_distribution", output_dir=folder)
