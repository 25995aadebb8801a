"""``genrelib train``: train the paper's CNN with one protocol, for one or several seeds."""

from __future__ import annotations

import argparse

from ..config import PROTOCOLS  # noqa: F401 - cli.pipeline reads it here
from ._types import (add_data_argument, add_output_arguments, jobs_count, non_negative_int, positive_float,
                     positive_int)

VERB = "train"
ORDER = 40


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--set section.key=value``, shared by ``train`` and ``run``."""
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="JSON configuration (genrelib.config.Config.to_json); missing keys keep their defaults")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set train.epochs=10 --set model.conv_filters=32,64")


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Table 1 and the protocol as flags (default: the configuration's value)."""
    group = parser.add_argument_group("training (default: the configuration, i.e. the paper's Table 1)")
    group.add_argument("--protocol", choices=PROTOCOLS, default=None)
    group.add_argument("--backend", default=None, help="embedding backend (genrelib.embed.BACKENDS or 'auto')")
    group.add_argument("--seed", type=non_negative_int, default=None, help="first seed")
    group.add_argument("--seeds", dest="n_seeds", type=positive_int, default=None, metavar="N",
                       help="repeat with N seeds (seed, seed+1, ...); results report mean ± std")
    group.add_argument("--epochs", type=positive_int, default=None)
    group.add_argument("--batch-size", type=positive_int, default=None)
    group.add_argument("--learning-rate", type=positive_float, default=None)
    group.add_argument("--folds", type=positive_int, default=None, help="k of the kfold protocol")
    group.add_argument("--augment", dest="augment_training", action=argparse.BooleanOptionalAction, default=None,
                       help="train on augmented copies of the training tracks too")
    group.add_argument("--jobs", type=jobs_count, default="auto", metavar="N",
                       help="runs trained side by side in worker processes, or 'auto' (default: two workers when "
                            "there are two CPUs and at least four runs to train); the same numbers either way")


def config_from_args(args: argparse.Namespace):
    """The configuration a command line asks for: file, then --set, then the explicit flags."""
    from ..config import Config
    from ..errors import ParameterError

    config = Config.from_json(args.config) if args.config else Config()
    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ParameterError(f"--set {item!r} must look like section.key=value")
        overrides[key.strip()] = value.strip()
    flags = {"protocol": "protocol", "backend": "embed.backend", "seed": "seed", "n_seeds": "train.n_seeds",
             "epochs": "train.epochs", "batch_size": "train.batch_size", "learning_rate": "train.learning_rate",
             "folds": "train.folds", "augment_training": "augment_training", "on_error": "data.on_error"}
    for attribute, key in flags.items():
        if getattr(args, attribute, None) is not None:
            overrides[key] = getattr(args, attribute)
    return (config.replace(**overrides) if overrides else config).validate()


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(VERB, help="train the CNN (protocol x seeds) into run directories",
                                   description="Embed the data (cached), augment the training tracks of each "
                                               "split, train the CNN and store a run directory per split and seed.")
    add_data_argument(parser, collection=True)
    add_config_arguments(parser)
    add_training_arguments(parser)
    add_output_arguments(parser, default_help="$GENRELIB_OUTPUT/runs or ./runs")
    return parser


def run(args: argparse.Namespace) -> int:
    from .. import evaluate, pipeline, train

    config = config_from_args(args)
    progress = not args.quiet
    tracks, facts, model = pipeline.load_tracks(args.data, backend=config.embed.backend,
                                                on_error=config.data.on_error, progress=progress)
    augmenter = pipeline.make_augmenter(tracks, config=config, backend=model, progress=progress) \
        if config.augment_training else None
    runs = train.run_protocol(tracks, config=config, backend=model, augmented_for=augmenter,
                              runs_dir=args.output_dir, data=facts, overwrite=args.overwrite, progress=progress,
                              jobs=args.jobs)
    summary = evaluate.summarize_runs(runs)
    print(f"{len(runs)} run(s) in {runs[0].parent}")
    print(f"test accuracy {summary['accuracy']['mean']:.4f} ± {summary['accuracy']['std']:.4f}, "
          f"loss {summary['loss']['mean']:.4f} ± {summary['loss']['std']:.4f} "
          f"({summary['facts']['protocol']}, {summary['facts']['backend']}, {summary['facts']['data']}, "
          f"augmentation {summary['facts']['augmentation']}, seeds {summary['facts']['seeds']})")
    return 0
