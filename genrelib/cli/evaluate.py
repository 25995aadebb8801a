"""``genrelib evaluate``: Tables 2-3, the baseline on the same folds, Figs 5-6, from stored runs."""

from __future__ import annotations

import argparse

from ._types import add_data_argument

VERB = "evaluate"
ORDER = 50


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(VERB, help="results tables and Figs 5-6 of trained runs",
                                   description="Summarise a group of runs (one protocol's folds and seeds): "
                                               "accuracy and loss (Table 3), per-genre scores (Table 2), the "
                                               "clip-mean baseline on the same folds, Fig 5 and Fig 6.")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="run directories, or a protocol folder holding them (from genrelib train)")
    add_data_argument(parser)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the clip-mean + logistic-regression baseline")
    parser.add_argument("--results-dir", default=None, help="default: $GENRELIB_OUTPUT/results or ./results")
    parser.add_argument("--figures-dir", default=None, help="default: $GENRELIB_OUTPUT/figures or ./figures")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .. import pipeline, plots, train
    from ..errors import DataError

    run_dirs = []
    for path in map(Path, args.runs):
        found = train.find_runs(path) if not (path / "meta.json").exists() else [path]
        if not found:
            raise DataError(f"{path}: no complete run directory here")
        run_dirs += found
    tracks = None
    if args.baseline:
        backend = train.load_run(run_dirs[0])["meta"]["backend"]["name"]
        tracks, _, _ = pipeline.load_tracks(args.data, backend=backend, on_error=args.on_error or "raise",
                                            progress=not args.quiet)
    summaries = pipeline.evaluate_runs(run_dirs, tracks, baseline=args.baseline, results_dir=args.results_dir)
    facts = summaries[0]["facts"]
    label = f"{facts['data']}, {facts['protocol']}, {facts['backend']}, augmentation {facts['augmentation']}"
    histories = [train.load_run(run)["history"] for run in run_dirs]
    plots.save_figure(plots.fig5_training_curves(histories, title=label), "fig5_training_curves",
                      output_dir=args.figures_dir)
    plots.save_figure(plots.fig6_confusion_matrix(summaries[0]["confusion"], title=label).figure,
                      "fig6_confusion_matrix", output_dir=args.figures_dir)
    for summary in summaries:
        print(f"{summary['facts']['model']}: test accuracy {summary['accuracy']['mean']:.4f} ± "
              f"{summary['accuracy']['std']:.4f}, loss {summary['loss']['mean']:.4f} ± {summary['loss']['std']:.4f} "
              f"({label}; {summary['facts']['runs']} runs, seeds {summary['facts']['seeds']})")
    return 0
