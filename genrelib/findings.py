"""What the results say, in words computed from the result tables - never typed in.

Notebooks: 04_cnn_training, 05_evaluation, 06_fine_tuning. Tool: ``tools/write_findings.py`` (``make demo`` runs
it) rewrites the generated blocks of ``README.md`` and ``results/README.md`` from ``results/*.json``; a unit test
fails when a committed block differs from what the committed tables give.

Every sentence here takes its numbers from a table: the per-run rows of a CNN group and of the baseline on the
same runs (:func:`genrelib.evaluate.summarize_runs` or ``results/per_run.json``), ``results/table3_accuracy.json``,
``results/backends.json`` and ``results/finetune.json``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from .errors import DataError
from .evaluate import MODELS
from .storage import output_dir

__all__ = [
    "load_results",
    "compare_runs",
    "describe_comparison",
    "describe_augmentation",
    "accuracy_table",
    "describe_backends",
    "describe_finetune",
    "describe_intervals",
    "describe_paired",
    "describe_run_time",
    "readme_block",
    "results_readme_block",
    "replace_block",
]

#: The embedding backend whose rows the generated blocks describe (the committed ``backend="auto"`` rows). Rows of
#: other backends (YAMNet's CNN and zero-shot rows, its fine-tuning section) share the tables but not these blocks:
#: mixing them would pair runs of different backends. ``describe_backends`` still lists every backend's probe.
README_BACKEND = "musicnn-msd"

_BEGIN = "<!-- begin generated: {name} (tools/write_findings.py; do not edit by hand) -->"
_END = "<!-- end generated: {name} -->"


def load_results(results_dir: str | os.PathLike | None = None, *,
                 backend: str | None = README_BACKEND) -> dict[str, pd.DataFrame]:
    """The result tables as data frames: ``table3``, ``per_run`` and, when present, ``backends``, ``finetune``
    (one row per setting), ``intervals`` and ``paired``. Raises :class:`DataError` naming a missing or unreadable
    file.

    ``backend`` (default :data:`README_BACKEND`) keeps only that backend's rows of ``table3``, ``per_run``,
    ``intervals`` and ``paired`` and that backbone's rows of ``finetune``; ``None`` keeps every row. ``backends``
    (the linear probes) is never filtered."""
    folder = Path(results_dir) if results_dir else output_dir("results", create=False)
    tables = {}
    for name, stem, required in (("table3", "table3_accuracy", True), ("per_run", "per_run", True),
                                 ("backends", "backends", False), ("finetune", "finetune", False),
                                 ("intervals", "intervals", False), ("paired", "paired", False)):
        path = folder / f"{stem}.json"
        if not path.exists() and not required:
            continue
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: cannot read the result table ({exc}); regenerate it with make demo") from exc
        rows = values["rows"] if "rows" in values else values["results"]
        table = pd.DataFrame(rows)
        if backend is not None and name in ("table3", "per_run", "intervals", "paired") and "backend" in table:
            table = table[table["backend"] == backend].reset_index(drop=True)
        if backend is not None and name == "finetune" and "backbone" in table:
            table = table[table["backbone"] == backend].reset_index(drop=True)
        tables[name] = table
    return tables


def compare_runs(cnn: pd.DataFrame, baseline: pd.DataFrame) -> dict:
    """Run-by-run comparison of two models tested on the same runs (``run``, ``accuracy``, ``n`` per row).

    Returns
    -------
    dict
        ``runs``, ``wins``, ``losses``, ``ties`` (the CNN's, by test accuracy), ``net_tracks`` (test tracks the
        CNN got right minus the baseline's, over all runs), ``test_tracks`` (summed over runs),
        ``cnn_mean`` and ``baseline_mean`` (mean accuracy over runs).
    """
    paired = cnn[["run", "accuracy", "n"]].merge(baseline[["run", "accuracy"]], on="run",
                                                 suffixes=("_cnn", "_baseline"), validate="one_to_one")
    if len(paired) != len(cnn) or not len(paired):
        raise DataError(f"the two models share {len(paired)} of {len(cnn)} runs: compare them on the same runs")
    difference = paired["accuracy_cnn"] - paired["accuracy_baseline"]
    return {"runs": len(paired), "wins": int((difference > 1e-9).sum()), "losses": int((difference < -1e-9).sum()),
            "ties": int((difference.abs() <= 1e-9).sum()),
            "net_tracks": int(round(float((difference * paired["n"]).sum()))),
            "test_tracks": int(paired["n"].sum()),
            "cnn_mean": float(paired["accuracy_cnn"].mean()), "baseline_mean": float(paired["accuracy_baseline"].mean())}


def describe_comparison(cnn: pd.DataFrame, baseline: pd.DataFrame, *, label: str = "the CNN") -> str:
    """One sentence: ``label`` against the clip-mean baseline on the same runs, with its wins, losses and ties."""
    c = compare_runs(cnn, baseline)
    verdict = ("level with" if abs(c["net_tracks"]) <= max(2, c["runs"] // 5) else
               "ahead of" if c["net_tracks"] > 0 else "behind")
    return (f"On the same {c['runs']} runs {label} reaches {_percent(c['cnn_mean'])} against the baseline's "
            f"{_percent(c['baseline_mean'])}: it wins {c['wins']} runs, loses {c['losses']} and ties {c['ties']}, "
            f"net {c['net_tracks']:+d} test tracks of {c['test_tracks']} - {verdict} the baseline.")


def describe_augmentation(with_augmentation: dict, without_augmentation: dict) -> str:
    """One sentence from two summaries (:func:`genrelib.evaluate.summarize_runs`) of the same splits and seeds."""
    on, off = with_augmentation["accuracy"]["mean"], without_augmentation["accuracy"]["mean"]
    facts = with_augmentation["facts"]
    tracks = int(with_augmentation["per_run"]["n"].sum())
    return (f"On the `{facts['protocol']}` splits (seeds {facts['seeds']}, {tracks} test tracks in all) "
            f"augmentation moves the CNN from {_percent(off)} to {_percent(on)} "
            f"({100 * (on - off):+.1f} points, {round((on - off) * tracks):+d} tracks).")


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _select(table: pd.DataFrame, *, model: str, protocol: str, augmentation: str,
            backend: str | None = None) -> pd.DataFrame:
    chosen = ((table["model"] == MODELS[model]) & (table["protocol"].str.split(" ").str[0] == protocol)
              & (table["augmentation"] == augmentation))
    if backend is not None:
        chosen &= table["backend"] == backend
    return table[chosen]


def _row(table3: pd.DataFrame, *, model: str, protocol: str, augmentation: str,
         backend: str | None = None) -> pd.Series | None:
    rows = _select(table3, model=model, protocol=protocol, augmentation=augmentation, backend=backend)
    return rows.iloc[0] if len(rows) else None


def _group(per_run: pd.DataFrame, *, model: str, protocol: str, augmentation: str,
           backend: str | None = None) -> pd.DataFrame:
    return _select(per_run, model=model, protocol=protocol, augmentation=augmentation, backend=backend)


def _protocols_and_backends(table3: pd.DataFrame) -> list[tuple[str, str]]:
    """Each (protocol as written, backend) of Table 3, in the table's order."""
    return list(dict.fromkeys(zip(table3["protocol"], table3["backend"])))


def accuracy_table(results: dict[str, pd.DataFrame]) -> str:
    """The README's table: test accuracy (mean ± std over runs) per protocol, CNN without and with
    augmentation, the baseline, and the paper's figure in its own row."""
    table3 = results["table3"]
    lines = ["| protocol | runs | paper CNN, no augmentation | paper CNN + augmentation | clip-mean + logistic regression |",
             "|---|---|---|---|---|"]
    for protocol, backend in _protocols_and_backends(table3):
        name = protocol.split(" ")[0]
        cells = []
        for model, augmentation in (("cnn", "off"), ("cnn", "on"), ("baseline", "off")):
            row = _row(table3, model=model, protocol=name, augmentation=augmentation, backend=backend)
            if row is None and model == "baseline":
                row = _row(table3, model=model, protocol=name, augmentation="on", backend=backend)
            cells.append("-" if row is None else f"{row['accuracy_mean']:.3f} ± {row['accuracy_std']:.3f}")
        first = table3[(table3["protocol"] == protocol) & (table3["backend"] == backend)].iloc[0]
        lines.append(f"| {protocol}, {first['data']}, {first['backend']}, seeds {first['seeds']} | {first['runs']} | "
                     + " | ".join(cells) + " |")
    paper = table3.dropna(subset=["paper_accuracy"]).iloc[0]
    lines.append(f"| *the paper (full GTZAN, VGGish, split not stated)* | | | *{paper['paper_accuracy']:.4f} "
                 f"(loss {paper['paper_loss']:.4f})* | |")
    return "\n".join(lines)


def _comparisons(results: dict[str, pd.DataFrame]) -> list[str]:
    table3, per_run = results["table3"], results["per_run"]
    sentences = []
    several_backends = table3["backend"].nunique() > 1
    for protocol, backend in _protocols_and_backends(table3):
        name = protocol.split(" ")[0]
        off = _row(table3, model="cnn", protocol=name, augmentation="off", backend=backend)
        on = _row(table3, model="cnn", protocol=name, augmentation="on", backend=backend)
        parts = []
        if off is not None and on is not None:
            parts.append(f"augmentation moves the CNN from {_percent(off['accuracy_mean'])} to "
                         f"{_percent(on['accuracy_mean'])} ({100 * (on['accuracy_mean'] - off['accuracy_mean']):+.1f} "
                         f"points)")
        for augmentation in ("on", "off"):
            cnn = _group(per_run, model="cnn", protocol=name, augmentation=augmentation, backend=backend)
            # The baseline never trains on augmented clips: one set of its runs serves both CNN groups.
            baseline = _group(per_run, model="baseline", protocol=name, augmentation="off", backend=backend)
            if len(cnn) and len(cnn) == len(baseline):
                c = compare_runs(cnn, baseline)
                parts.append(f"against the baseline the CNN {'with' if augmentation == 'on' else 'without'} "
                             f"augmentation wins {c['wins']} runs, loses {c['losses']} and ties {c['ties']} "
                             f"(net {c['net_tracks']:+d} test tracks of {c['test_tracks']})")
        if parts:
            runs = int(table3[(table3["protocol"] == protocol) & (table3["backend"] == backend)]["runs"].iloc[0])
            label = f"`{name}`, {backend}" if several_backends else f"`{name}`"
            sentences.append(f"{label} ({runs} runs): " + "; ".join(parts) + ".")
    return sentences


def describe_intervals(results: dict[str, pd.DataFrame]) -> list[str]:
    """One sentence per protocol and backend: accuracy over test tracks with its 95 % bootstrap interval
    (``results/intervals.json``) for the CNN without and with augmentation and the baseline."""
    if "intervals" not in results:
        return []
    table = results["intervals"]
    sentences = []
    for protocol, backend in _protocols_and_backends(table):
        name, parts = protocol.split(" ")[0], []
        for model, augmentation, label in (("cnn", "off", "CNN"), ("cnn", "on", "CNN + augmentation"),
                                           ("baseline", "off", "baseline")):
            row = _row(table, model=model, protocol=name, augmentation=augmentation, backend=backend)
            if row is not None:
                parts.append(f"{label} {row['accuracy']:.3f} ({row['low']:.3f}-{row['high']:.3f})")
        if parts:
            tracks = int(table[(table["protocol"] == protocol) & (table["backend"] == backend)]["n_tracks"].iloc[0])
            sentences.append(f"`{name}`, {backend}, {tracks} test tracks: " + ", ".join(parts))
    return sentences


def describe_paired(results: dict[str, pd.DataFrame]) -> list[str]:
    """One sentence per CNN group: its paired comparison with the baseline (``results/paired.json``)."""
    if "paired" not in results:
        return []
    return [f"`{row.protocol.split(' ')[0]}`, {row.backend}, augmentation {row.augmentation}: CNN - baseline "
            f"{100 * row.difference:+.1f} points ({100 * row.low:+.1f} to {100 * row.high:+.1f}), better on "
            f"{row.first_better} tracks, worse on {row.second_better}, McNemar p = {row.p_value:.2g}"
            for row in results["paired"].itertuples()]


def describe_backends(results: dict[str, pd.DataFrame]) -> str | None:
    """The linear-probe accuracy of each backend's default layer (``results/backends.json``), best first."""
    if "backends" not in results:
        return None
    probes = results["backends"]
    default = probes.drop_duplicates("backend").sort_values("accuracy_mean", ascending=False)
    return ", ".join(f"{row.backend} {_percent(row.accuracy_mean)}" for row in default.itertuples())


def describe_finetune(results: dict[str, pd.DataFrame] | None = None) -> str | None:
    """Frozen against fine-tuned accuracy of each setting of ``results/finetune.json`` (paired per run)."""
    results = load_results() if results is None else results
    if "finetune" not in results:
        return None
    parts = []
    for setting in results["finetune"].itertuples():
        runs = pd.DataFrame(setting.runs)
        better, worse = int((runs["difference"] > 0).sum()), int((runs["difference"] < 0).sum())
        parts.append(f"`{setting.setting}` (unfreeze {setting.unfreeze}, stage-2 lr {setting.finetune_learning_rate:g}): "
                     f"frozen {_percent(runs['frozen'].mean())} -> fine-tuned {_percent(runs['finetuned'].mean())}, "
                     f"{better} of {len(runs)} runs better, {worse} worse")
    return "; ".join(parts) + "."


def readme_block(results: dict[str, pd.DataFrame]) -> str:
    """The README's generated results block: the accuracy table and what each comparison measured."""
    lines = [accuracy_table(results), "", "Measured on these runs (`results/per_run.json`):", ""]
    lines += [f"- {sentence}" for sentence in _comparisons(results)]
    intervals = describe_intervals(results)
    if intervals:
        lines.append("- Accuracy over test tracks with 95 % bootstrap intervals (`results/intervals.md`): "
                     + "; ".join(intervals) + ".")
    paired = describe_paired(results)
    if paired:
        lines.append("- Paired on the same test tracks (`results/paired.md`): " + "; ".join(paired) + ".")
    backends = describe_backends(results)
    if backends:
        lines.append(f"- Linear probes of the offline backends (`results/backends.md`, same 5 folds × 3 seeds): "
                     f"{backends}.")
    finetune = describe_finetune(results)
    if finetune:
        lines.append(f"- Fine-tuning musicnn-msd (`results/finetune.md`, 5 folds × 3 seeds): {finetune}")
    return "\n".join(lines)


def results_readme_block(results: dict[str, pd.DataFrame]) -> str:
    """``results/README.md``'s generated block: every row of Table 3 and the run-by-run comparisons."""
    table3 = results["table3"]
    lines = ["| protocol | model | augmentation | runs | test accuracy | test loss |", "|---|---|---|---|---|---|"]
    for row in table3.itertuples():
        lines.append(f"| {row.protocol} | {row.model} | {row.augmentation} | {row.runs} | "
                     f"{row.accuracy_mean:.4f} ± {row.accuracy_std:.4f} | {row.loss_mean:.4f} ± {row.loss_std:.4f} |")
    lines += ["", *[f"- {sentence}" for sentence in _comparisons(results)]]
    per_run = results["per_run"]
    for model in ("cnn", "baseline"):
        for augmentation in ("off", "on"):
            group = _group(per_run, model=model, protocol="kfold", augmentation=augmentation)
            if len(group) and (model == "cnn" or augmentation == "off"):
                lines.append(f"- k-fold per-run test loss of the {MODELS[model]}"
                             f"{'' if model == 'baseline' else f' (augmentation {augmentation})'}: "
                             f"{group['loss'].min():.2f}-{group['loss'].max():.2f}.")
    return "\n".join(lines)


def fullsize_block(bench: dict) -> str:
    """The README's generated block from ``results/bench_fullsize.json`` (``benchmarks/bench_fullsize.py``): what each
    stage of each copy cost on the benchmark's machine, the second run's share, the VGGish projection."""
    lines = [f"{bench['machine']['cpus']} CPUs, musicnn-msd, every stage in an empty cache; a GTZAN-shaped stand-in "
             f"made from the mini set's clips (`tools/make_fullsize_gtzan.py`):", "",
             "| copy | tracks | protocols × seeds | augmentation | stage | wall | CPU | peak RSS | cache after |",
             "|---|---|---|---|---|---|---|---|---|"]
    for record in bench["records"]:
        tracks = record["tracks_per_genre"] * 10
        protocols = f"{', '.join(record.get('protocols_run', bench['protocols']))} × {record.get('seeds', bench['seeds'])}"
        for stage in record["stages"]:
            lines.append(f"| {record['copy']} | {tracks} | {protocols} | {record.get('augmentation', 'on')} | "
                         f"{stage['stage']} | {_minutes(stage['wall_s'])} | {_minutes(stage.get('cpu_s'))} | "
                         f"{_megabytes(stage.get('peak_rss_mb'))} | {_megabytes(stage.get('cache_mb'))} |")
    lines.append("")
    for record in bench["records"]:
        projection = record["vggish_projection"]
        lines.append(f"- {record['copy']}, {record['tracks_per_genre'] * 10} tracks ({'; '.join(record['data_label'])}): "
                     f"{record['clips_embedded']} clips embedded; the second `genrelib run` took "
                     f"{100 * record['second_run_share_of_first']:.1f} % of the first; the first run with VGGish "
                     f"instead of musicnn-msd, projected: {_minutes(projection['run_first_wall_s'])} "
                     f"(`{record.get('command', bench['command'])}`).")
    return "\n".join(lines)


def describe_run_time(runs: list[str | os.PathLike], *, seconds: float, started: str) -> str:
    """One sentence on how long a training cell took: its wall time, and which of its runs it trained.

    Notebook: 05_evaluation.

    Parameters
    ----------
    runs : list of run folders
        What the cell's :func:`genrelib.train.run_protocol` calls returned.
    seconds : float >= 0
        The cell's wall time.
    started : str
        When the cell started, ``time.strftime("%Y-%m-%dT%H:%M:%S")`` (local time, as each run's ``meta.json``
        records its ``started``): runs that started earlier were reused, not trained.

    Returns
    -------
    str
        E.g. "This cell took 11.9 min on 2 CPU cores: 18 runs, 18 trained now, 0 reused (the networks' fitting
        alone, added over runs that may have trained side by side: 9.3 min)."
    """
    metas = [json.loads((Path(run) / "meta.json").read_text()) for run in runs]
    trained = [meta for meta in metas if meta.get("started", "") >= started]
    fitting = sum(float(meta.get("train_seconds", 0.0)) for meta in trained)
    cores = os.cpu_count()
    return (f"This cell took {_minutes(seconds)} on {cores} CPU core{'s' * (cores != 1)}: {len(metas)} "
            f"run{'s' * (len(metas) != 1)}, "
            f"{len(trained)} trained now, {len(metas) - len(trained)} reused from an earlier run"
            + (f" (the networks' fitting alone, added over runs that may have trained side by side: "
               f"{_minutes(fitting)})." if trained else "."))


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _megabytes(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1024:.2f} GB" if value >= 1024 else f"{value:.0f} MB"


def replace_block(text: str, name: str, block: str) -> str:
    """``text`` with the generated block ``name`` (between its two marker comments) replaced by ``block``.
    Raises :class:`DataError` when the markers are missing."""
    begin, end = _BEGIN.format(name=name), _END.format(name=name)
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), flags=re.DOTALL)
    if not pattern.search(text):
        raise DataError(f"no generated block {name!r}: the text needs the lines {begin!r} and {end!r}")
    return pattern.sub(lambda _: f"{begin}\n{block}\n{end}", text, count=1)
