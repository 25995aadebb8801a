"""``genrelib evaluate``: Tables 2-3, the baseline on the same folds, Figs 5-6, from stored runs.

``genrelib evaluate --zero-shot``: zero-shot YAMNet (AudioSet genre classes, nothing trained) on every track,
written to the same tables (protocol ``zero-shot``), and ``figures/zero_shot_vs_trained.png``.
"""

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
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR",
                        help="run directories, or a protocol folder holding them (from genrelib train)")
    parser.add_argument("--zero-shot", action="store_true",
                        help="no runs: score every track with YAMNet's AudioSet genre classes, add protocol "
                             "'zero-shot' rows to the results tables and draw figures/zero_shot_vs_trained.png")
    add_data_argument(parser, collection=True)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the clip-mean + logistic-regression baseline")
    parser.add_argument("--results-dir", default=None, help="default: $GENRELIB_OUTPUT/results or ./results")
    parser.add_argument("--figures-dir", default=None, help="default: $GENRELIB_OUTPUT/figures or ./figures")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .. import pipeline, plots, train
    from ..errors import DataError, ParameterError

    if args.zero_shot:
        if args.runs:
            raise ParameterError("--zero-shot trains and reads no runs; drop the RUN_DIR arguments")
        return _zero_shot(args)
    if not args.runs:
        raise ParameterError("give RUN_DIR arguments (or --zero-shot)")
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


def _zero_shot(args: argparse.Namespace) -> int:
    from .. import predict
    from ..errors import DataError

    summary = predict.evaluate_zero_shot(args.data, results_dir=args.results_dir, progress=not args.quiet)
    facts = summary["facts"]
    print(f"{facts['model']}: accuracy {summary['accuracy']['mean']:.4f} (95 % interval "
          f"{summary['interval']['low']:.4f} - {summary['interval']['high']:.4f}), loss {summary['loss']['mean']:.4f} "
          f"on the genre scores renormalised to sum to 1 ({facts['data']}, every track)")
    print(summary["per_genre"].round(2).to_string())
    try:
        written = predict.zero_shot_figure(results_dir=args.results_dir, figures_dir=args.figures_dir)
        print(f"figure: {written[0]}")
    except DataError as exc:
        print(f"figure not drawn: {exc}")
    return 0
