"""Frozen-features CNN vs fine-tuned, same folds and seeds: writes results/finetune.{md,json}.

Usage::

    GENRELIB_DATA=/path/to/gtzan_mini python tools/finetune_cv.py [--folds 5] [--seeds 3] [--output-dir results]
        [--settings default control lr1e-4 unfreeze2] [--cache DIR] [--backbone musicnn-msd] [--merge]

``--backbone`` fine-tunes another backbone of ``genrelib.finetune.BACKBONES`` (default musicnn-msd, the
committed table). ``--merge`` keeps the rows of the existing ``finetune.json`` in ``--output-dir`` that this call
does not rerun (other backbones or settings) and its header; each merged row records its own command, folds and
seeds. Rows of backbones other than the header's are written in a section of their own, with the header
backbone's ``default`` runs of the same seeds and folds beside them (paired per run)::

    GENRELIB_DATA=... python tools/finetune_cv.py --backbone yamnet --settings default --folds 5 --seeds 1 --merge

Each setting runs ``genrelib.finetune.run_protocol`` (kfold, the classifier's splits, ``--seeds`` seeds) in
its own process, so that its peak resident memory is its own; wall time, CPU time (this process and its
augmentation workers) and peak RSS are recorded per setting. ``--cache`` (default: a new temporary folder)
is the cache root for every setting: the first setting pays for augmentation, log-mel patches and the
frozen layers (a cold cache), the others reuse what they share. Stage 1 (head only on the frozen backbone)
is the frozen-features CNN; each run's fine-tuned model continues from it, so the two accuracies of a run
are paired (same split, seed, head initialisation and training clips).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Settings fixed before any was run. "default" is the CPU default of genrelib.finetune; "control" trains the
#: head alone for the same extra epochs (is any gain the backbone's, or just more training?); the other two
#: move the learning rate or the depth one step.
SETTINGS = {
    "default": {"unfreeze": 1, "finetune_learning_rate": 1e-5},
    "control": {"unfreeze": 0, "finetune_learning_rate": 1e-5},
    "lr1e-4": {"unfreeze": 1, "finetune_learning_rate": 1e-4},
    "unfreeze2": {"unfreeze": 2, "finetune_learning_rate": 1e-5},
}
FINETUNE_EPOCHS = 10
BACKBONE = "musicnn-msd"


def run_setting(name: str, *, data: str | None, folds: int, seeds: int, runs_dir: str,
                backbone: str = BACKBONE, max_runs: int | None = None, skip_runs: int = 0) -> dict:
    """In a child process: one setting's protocol, its summary and its costs."""
    sys.path.insert(0, str(ROOT))
    from genrelib import data as gdata
    from genrelib import finetune
    from genrelib.config import Config

    started, cpu_started = time.perf_counter(), time.process_time()
    root, source = gdata.resolve_root(data)
    index = gdata.load_gtzan(root)
    config = Config().replace(protocol="kfold", **{"train.folds": folds, "train.n_seeds": seeds})
    run_dirs = finetune.run_protocol(index, backbone=backbone, config=config, finetune_epochs=FINETUNE_EPOCHS,
                                     runs_dir=runs_dir, progress=False, max_runs=max_runs,
                                     skip_runs=skip_runs, **SETTINGS[name])
    runs, table = finetune.summarize(run_dirs)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    meta = finetune.load_run(run_dirs[0])["meta"]
    metas = [finetune.load_run(run_dir)["meta"] for run_dir in run_dirs]
    return {
        "setting": name, **SETTINGS[name], "backbone": backbone, "trained_layers": meta["trained_layers"],
        "finetune_epochs": FINETUNE_EPOCHS, "head_epochs": meta["head_epochs"],
        "data": {"root": str(root), "source": source, "n_clips": len(index)},
        "protocol": table.attrs["protocol"],
        "runs": runs.round(6).to_dict(orient="records"),
        "summary": summary_record(table),
        "augmented_clips_per_run": meta["augmented_clips"],
        "stage_seconds_first_run": meta["timing"],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started + children.ru_utime + children.ru_stime, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_children_mb": round(children.ru_maxrss / 1024),
        # What the runs themselves recorded (a setting whose runs were trained by an earlier call reuses them):
        "runs_wall_seconds": round(sum(m.get("wall_seconds", 0.0) for m in metas), 1),
        "runs_cpu_seconds": round(sum(m.get("cpu_seconds", 0.0) for m in metas), 1),
        "runs_peak_rss_mb": max(m.get("peak_rss_mb", 0) for m in metas),
    }


def summary_record(table) -> dict:
    """:func:`genrelib.finetune.summarize`'s table as the JSON record: stage -> statistic -> value (4 decimals)."""
    return {stage: {k: round(float(v), 4) for k, v in table.loc[stage].items()} for stage in table.index}


def join_runs(earlier: dict, later: dict) -> dict:
    """One row from two calls that trained different runs of the same setting (``--skip-runs``): the runs of
    both (the later call's wins a run both trained), the summary recomputed over them by
    :func:`genrelib.finetune.summary_statistics`, as :func:`genrelib.finetune.summarize` does, costs added up,
    both commands."""
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from genrelib.finetune import summary_statistics

    later_keys = {(run["seed"], run["fold"]) for run in later["runs"]}
    runs = sorted([run for run in earlier["runs"] if (run["seed"], run["fold"]) not in later_keys] + later["runs"],
                  key=lambda run: (run["seed"], run["fold"]))
    summary = summary_record(summary_statistics(pd.DataFrame(runs)))
    seeds = sorted({run["seed"] for run in runs})
    protocol = re.sub(r"x seeds \[[^]]*\], \d+ runs", f"x seeds {seeds}, {len(runs)} runs", later["protocol"])
    joined = {**later, "runs": runs, "summary": summary, "max_runs": None, "protocol": protocol,
              "command": f"{earlier.get('command', '')}; then {later['command']}"}
    for key in ("wall_seconds", "cpu_seconds", "runs_wall_seconds", "runs_cpu_seconds"):
        joined[key] = round(earlier.get(key, 0.0) + later.get(key, 0.0), 1)
    for key in ("peak_rss_mb", "peak_rss_children_mb", "runs_peak_rss_mb"):
        joined[key] = max(earlier.get(key, 0), later.get(key, 0))
    return joined


def _table_lines(results: list[dict]) -> list[str]:
    lines = [
        "| setting | unfreeze (trained layers) | stage-2 lr | frozen | fine-tuned | difference | runs better / same / "
        "worse | weights moved | wall | CPU | peak RSS |",
        "| --- | --- | ---: | ---: | ---: | ---: | :---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results:
        s = row["summary"]
        differences = [run["difference"] for run in row["runs"]]
        counts = f"{sum(d > 0 for d in differences)} / {sum(d == 0 for d in differences)} / " \
                 f"{sum(d < 0 for d in differences)}"
        lines.append(
            f"| {row['setting']} | {row['unfreeze']} ({', '.join(row['trained_layers']) or 'head only'}) | "
            f"{row['finetune_learning_rate']:g} | "
            f"{100 * s['frozen']['mean']:.1f} ± {100 * s['frozen']['std']:.1f} % | "
            f"{100 * s['finetuned']['mean']:.1f} ± {100 * s['finetuned']['std']:.1f} % | "
            f"{100 * s['difference']['mean']:+.1f} ± {100 * s['difference']['std']:.1f} pts | {counts} | "
            f"{100 * max(run['weight_change'] for run in row['runs']):.2g} % | "
            f"{max(row['wall_seconds'], row.get('runs_wall_seconds', 0)) / 60:.1f} min | "
            f"{max(row['cpu_seconds'], row.get('runs_cpu_seconds', 0)) / 60:.1f} min | "
            f"{max(row['peak_rss_mb'], row['peak_rss_children_mb'], row.get('runs_peak_rss_mb', 0)) / 1024:.1f} GB |")
    return lines


def markdown(report: dict) -> str:
    main = [row for row in report["results"] if row.get("backbone", report["backbone"]) == report["backbone"]]
    others = [row for row in report["results"] if row not in main]
    lines = _main_markdown({**report, "results": main}).rstrip("\n").split("\n")
    for backbone in dict.fromkeys(row["backbone"] for row in others):
        lines += ["", *_other_markdown(report, main, [row for row in others if row["backbone"] == backbone])]
    return "\n".join(lines) + "\n"


#: What one "block" of ``--unfreeze`` is, per backbone of the extra sections.
BLOCK_NOTES = {
    "yamnet": "a block is one of YAMNet's official layers, top first: `layer14` ... `layer2` are each one "
              "depthwise-separable convolution (3x3 depthwise conv + batch norm + ReLU6, 1x1 pointwise conv + "
              "batch norm + ReLU6), `layer1` the first full 3x3 convolution; `unfreeze 1` trains layer14's "
              "two kernels (1 058 816 weights), the batch norms stay frozen. The "
              "frozen layers' outputs (layer13's 3 x 2 x 1024 map per 0.96 s patch) are computed once per clip "
              "and cached",
}


def _other_markdown(report: dict, main: list[dict], rows: list[dict]) -> list[str]:
    """A section for one other backbone: its table, what its runs are, and the header backbone's ``default``
    runs of the same seeds and folds (paired per run)."""
    backbone = rows[0]["backbone"]
    n_runs = len(rows[0]["runs"])
    subset = n_runs < report["n_runs"]
    lines = [
        f"## Fine-tuning {backbone}: frozen features vs fine-tuned",
        "",
        f"Same data, splits, augmentation and schedule as above; {BLOCK_NOTES.get(backbone, '')}. "
        f"Runs: " + ", ".join(f"seed {seed} fold {fold}" for seed, fold in
                              ((run["seed"], run["fold"]) for run in rows[0]["runs"])) +
        f" of stratified {rows[0].get('folds', report['folds'])}-fold CV, {n_runs} run(s)" +
        (f" - **a subset** of the {report['n_runs']} runs of the table above (the same splits and seeds for "
         f"those runs), chosen to fit the CPU time available; wall, CPU and peak RSS are what these runs recorded in their "
         f"own process (augmented clips and frozen-layer outputs already in the cache are not recomputed)"
         if subset else "") + ".",
        "",
        *_table_lines(rows),
    ]
    reference = next((row for row in main if row["setting"] == "default"), None)
    for row in rows:
        lines += ["", f"Command (`{row['setting']}`): `{row.get('command', report['command'])}`."]
        if reference is None:
            continue
        by_run = {(run["seed"], run["fold"]): run for run in reference["runs"]}
        pairs = [(run, by_run.get((run["seed"], run["fold"]))) for run in row["runs"]]
        pairs = [(ours, theirs) for ours, theirs in pairs if theirs is not None]
        if not pairs:
            continue
        import numpy as np

        parts = []
        for stage in ("frozen", "finetuned"):
            ours = np.array([a[stage] for a, _ in pairs])
            theirs = np.array([b[stage] for _, b in pairs])
            delta = ours - theirs
            parts.append(f"{stage}: {backbone} {100 * ours.mean():.1f} % vs {report['backbone']} "
                         f"{100 * theirs.mean():.1f} %, difference {100 * delta.mean():+.1f} ± "
                         f"{100 * delta.std():.1f} pts ({int((delta > 0).sum())} / {int((delta == 0).sum())} / "
                         f"{int((delta < 0).sum())} runs better / same / worse, sign test p = "
                         f"{sign_test(list(delta)):.2f})")
        lines += ["", f"Paired with {report['backbone']}'s `default` runs of the same {len(pairs)} seed x fold "
                      f"splits (table above): " + "; ".join(parts) + ". Fine-tuning's own paired change for "
                      f"{backbone}: {100 * row['summary']['difference']['mean']:+.1f} pts (sign test p = "
                      f"{sign_test([run['difference'] for run in row['runs']]):.2f})."]
    return lines


def _main_markdown(report: dict) -> str:
    lines = [
        "# Fine-tuning musicnn-msd: frozen features vs fine-tuned",
        "",
        *([f"> {report['note']}", ""] if report.get("note") else []),  # e.g. measured with older code
        f"Data: {report['data']['n_clips']} GTZAN clips (`{report['data']['root']}`, found via "
        f"{report['data']['source']}). Protocol: stratified {report['folds']}-fold CV x {report['seeds']} seeds "
        f"(`genrelib.train.make_splits`, protocol `kfold`, 10 % of each fold's training tracks for validation); "
        f"{report['n_runs']} runs per setting, the same splits and seeds for every setting. Training clips: the "
        f"fold's training tracks plus 3 augmented copies each (time stretch, pitch shift, white noise; "
        f"`genrelib.augment`, seed 0).",
        "",
        "Schedule: stage 1 trains the paper's CNN head on the frozen backbone (Table 1: RMSprop lr 1e-3, rho 0.9, "
        "30 epochs, batch 32; the epoch with the lowest validation loss is kept) - this is the **frozen** "
        f"column; stage 2 continues from it for {FINETUNE_EPOCHS} epochs with the top `unfreeze` blocks of the "
        "backbone trainable (batch norm frozen, in inference mode) at the stated learning rate, again keeping "
        "the best validation epoch - the **fine-tuned** column. Accuracy on each fold's test tracks; mean ± std "
        "over runs (ddof 0); *difference* is fine-tuned minus frozen on the same run (paired); *weights moved*: "
        "the largest relative change ||w - w_pretrained|| / ||w_pretrained|| of a fine-tuned backbone layer over "
        "the runs.",
        "",
    ]
    lines += _table_lines(report["results"])
    lines += ["", "## Did fine-tuning help?", "", closing_note(report), ""]
    lines += [
        f"Machine: {report['machine']}. Wall and CPU times are for the whole setting ({report['n_runs']} runs) and "
        "were measured while other developers' jobs shared the 2 cores, so wall time overstates the cost; CPU "
        "time (this process and its augmentation workers) is the steadier figure. The first setting ran on a "
        "cold cache (augmentation, log-mel patches and the frozen layers' outputs computed once for all runs); "
        "the others reused what they share. Peak RSS: the larger of the setting's process and its workers.",
        "",
        f"Command: `{report['command']}`. Per-run accuracies, best epochs and versions: `finetune.json`.",
        "",
    ]
    return "\n".join(lines)


def sign_test(differences: list[float]) -> float:
    """Two-sided exact sign test over the runs whose accuracy changed (ties dropped); 1.0 when none changed."""
    from scipy.stats import binomtest

    better, worse = sum(d > 0 for d in differences), sum(d < 0 for d in differences)
    return 1.0 if better + worse == 0 else float(binomtest(better, better + worse).pvalue)


def closing_note(report: dict) -> str:
    """The answer, from the numbers: each setting's paired change, and the default against the control."""
    rows = {row["setting"]: row for row in report["results"]}
    change = {name: row["summary"]["difference"]["mean"] for name, row in rows.items()}
    tests = {name: sign_test([run["difference"] for run in row["runs"]]) for name, row in rows.items()}
    parts = [f"`{name}` {100 * change[name]:+.1f} pts ({sum(run['difference'] != 0 for run in row['runs'])} of "
             f"{len(row['runs'])} runs changed, sign test p = {tests[name]:.2f})" for name, row in rows.items()]
    helped = any(change[name] > 0 and tests[name] < 0.05 for name in rows)
    note = ("Yes, measurably" if helped else "No: on these data fine-tuning did not measurably help") + \
        ". Paired change in test accuracy, fine-tuned minus frozen: " + "; ".join(parts) + "."
    if "control" in rows and "default" in rows:
        same = abs(change["control"] - change["default"]) < 1e-9
        note += (f" The head-only control (no backbone weight trains, same extra epochs) changed accuracy by "
                 f"{100 * change['control']:+.1f} pts")
        note += ", exactly as much as the default: that gain comes from the extra head epochs, not the backbone." \
            if same else "."
    moved = max(run["weight_change"] for row in report["results"] for run in row["runs"])
    frozen = rows[next(iter(rows))]["summary"]["frozen"]["mean"]
    return note + (f" The frozen musicnn-msd features already reach {100 * frozen:.1f} % (compare the linear probe in "
                   f"`results/backends.md`); a test fold holds 20 clips, so one clip is 5 pts, and the runs share "
                   f"their "
                   f"data (3 seeds x 5 folds), so the sign test is, if anything, optimistic. Fine-tuning moved no "
                   f"backbone layer by more than {100 * moved:.2g} % of its norm.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="GTZAN root (default: $GENRELIB_DATA, then ./data/gtzan)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--cache", default=None, help="cache root for all settings (default: a new temporary one)")
    parser.add_argument("--output-dir", default=str(ROOT / "results"))
    parser.add_argument("--markdown-only", action="store_true",
                        help="rewrite finetune.md from the finetune.json in --output-dir, running nothing")
    parser.add_argument("--backbone", default=BACKBONE, help=f"backbone to fine-tune (default: {BACKBONE})")
    parser.add_argument("--merge", action="store_true",
                        help="keep the existing finetune.json's header and the rows this call does not rerun")
    parser.add_argument("--max-runs", type=int, default=None,
                        help="only the first N runs of the folds x seeds (seed 0's folds first): a labelled subset")
    parser.add_argument("--skip-runs", type=int, default=0,
                        help="leave out the first K runs; with --merge, this call's runs join the existing row's "
                             "(e.g. --skip-runs 10 adds seed 2 to a row of seeds 0-1)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from genrelib.storage import neutral_paths

    if args.markdown_only:
        report = json.loads((Path(args.output_dir) / "finetune.json").read_text())
        (Path(args.output_dir) / "finetune.md").write_text(neutral_paths(markdown(report)))
        return 0
    runs_dir = str(Path(args.cache or tempfile.mkdtemp(prefix="finetune_cv-")) / "runs")
    if args.child:
        print(json.dumps(run_setting(args.child, data=args.data, folds=args.folds, seeds=args.seeds,
                                     runs_dir=runs_dir, backbone=args.backbone, max_runs=args.max_runs,
                                     skip_runs=args.skip_runs)))
        return 0
    cache = args.cache or str(Path(runs_dir).parent)
    env = {**os.environ, "GENRELIB_CACHE": cache, "TF_CPP_MIN_LOG_LEVEL": "2"}
    results = []
    for name in args.settings:
        command = [sys.executable, __file__, "--child", name, "--folds", str(args.folds), "--seeds", str(args.seeds),
                   "--cache", cache, "--backbone", args.backbone, *(["--data", args.data] if args.data else []),
                   *(["--max-runs", str(args.max_runs)] if args.max_runs else []),
                   *(["--skip-runs", str(args.skip_runs)] if args.skip_runs else [])]
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        s = results[-1]["summary"]
        print(f"{name:10s} frozen {s['frozen']['mean']:.4f} ± {s['frozen']['std']:.4f}  fine-tuned "
              f"{s['finetuned']['mean']:.4f} ± {s['finetuned']['std']:.4f}  difference {s['difference']['mean']:+.4f}"
              f"  ({results[-1]['wall_seconds']:.0f} s wall, {results[-1]['cpu_seconds']:.0f} s CPU)", flush=True)
    import tensorflow as tf

    command = " ".join(filter(None, [
        f"GENRELIB_DATA={shlex.quote(os.environ['GENRELIB_DATA'])}" if os.environ.get("GENRELIB_DATA") else "",
        "python tools/finetune_cv.py", shlex.join(argv if argv is not None else sys.argv[1:])]))
    output_dir = Path(args.output_dir)
    if args.merge:
        report = json.loads((output_dir / "finetune.json").read_text())
        rerun = {(args.backbone, row["setting"]) for row in results}
        for row in results:
            row.update(command=command, folds=args.folds, seeds=args.seeds, max_runs=args.max_runs)
        if args.skip_runs:
            earlier = {row["setting"]: row for row in report["results"]
                       if row.get("backbone", report["backbone"]) == args.backbone}
            results = [join_runs(earlier[row["setting"]], row) if row["setting"] in earlier else row
                       for row in results]
        report["results"] = [row for row in report["results"]
                             if (row.get("backbone", report["backbone"]), row["setting"]) not in rerun] + results
        (output_dir / "finetune.json").write_text(neutral_paths(json.dumps(report, indent=1) + "\n"))
        (output_dir / "finetune.md").write_text(neutral_paths(markdown(report)))
        print(f"merged into {output_dir / 'finetune.md'} and finetune.json")
        return 0
    report = {
        "command": command,
        "data": results[0]["data"], "folds": args.folds, "seeds": args.seeds,
        "n_runs": args.folds * args.seeds, "backbone": args.backbone,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), no GPU; Python "
                   f"{platform.python_version()}, TensorFlow {tf.__version__}",
        "date": time.strftime("%Y-%m-%d"), "results": results,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "finetune.json").write_text(neutral_paths(json.dumps(report, indent=1) + "\n"))
    (output_dir / "finetune.md").write_text(neutral_paths(markdown(report)))
    print(f"wrote {output_dir / 'finetune.md'} and finetune.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
