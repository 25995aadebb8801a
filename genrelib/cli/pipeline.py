"""``genrelib run``: the whole pipeline (data -> augment -> embed -> train -> evaluate -> figures), on GTZAN or on
any folder-per-label collection (``--data DIR``; :func:`genrelib.collection.load_collection`)."""

from __future__ import annotations

import argparse

from ._types import add_data_argument
from .train import PROTOCOLS, add_config_arguments, add_training_arguments

VERB = "run"
ORDER = 90


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(VERB, help="run every stage; write results/ and figures/",
                                   description="Embed, augment, train and evaluate for each protocol, then "
                                               "write the results tables and Figs 1-6. Every stage is cached: a "
                                               "re-run recomputes nothing. --figures-only redraws the figures "
                                               "from stored runs without training.")
    add_data_argument(parser, collection=True)
    add_config_arguments(parser)
    add_training_arguments(parser)
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=None,
                        help="protocols to run (default: the configuration's protocol)")
    parser.add_argument("--figures-only", action="store_true",
                        help="redraw Figs 1-6 from the data and the newest stored runs of the configured "
                             "protocol and backend; train nothing")
    parser.add_argument("--no-figures", action="store_true",
                        help="train and write the results tables, leave figures/ as it is")
    parser.add_argument("--runs-dir", default=None, help="default: $GENRELIB_OUTPUT/runs or ./runs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    from .. import pipeline
    from .train import config_from_args

    config = config_from_args(args)
    if args.figures_only:
        written = pipeline.regenerate_figures(config, root=args.data, runs_dir=args.runs_dir,
                                              progress=not args.quiet)
        print(f"{len(written)} figure file(s) written to {written[-1].parent}")
        return 0
    outcome = pipeline.run_pipeline(config, root=args.data, protocols=args.protocols, runs_dir=args.runs_dir,
                                    progress=not args.quiet, figures=not args.no_figures, jobs=args.jobs)
    for protocol, result in outcome.items():
        if protocol in ("figures", "data"):
            continue
        for summary in result["summaries"]:
            facts = summary["facts"]
            print(f"{facts['protocol']} / {facts['model']}: test accuracy {summary['accuracy']['mean']:.4f} ± "
                  f"{summary['accuracy']['std']:.4f} ({facts['backend']}, {facts['data']}, {facts['runs']} runs)")
    if outcome["figures"]:
        print(f"figures: {outcome['figures'][-1].parent}")
    elif args.no_figures:
        print("figures: not redrawn (--no-figures)")
    else:
        print(f"figures: not redrawn (they show the configured protocol {config.protocol!r}, which this run left "
              f"out; add it to --protocols)")
    return 0
