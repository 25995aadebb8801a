"""``genrelib finetune``: fine-tune a pretrained backbone with the paper's CNN, frozen vs fine-tuned.

Examples::

    genrelib finetune                                   # musicnn-msd, top block, the configuration's protocol
    genrelib finetune --backbone musicnn-msd --unfreeze 2 --protocol kfold --folds 5 --seeds 3
    genrelib finetune --backbone vggish --unfreeze all  # the whole network: meant for a GPU
    genrelib finetune --backbone yamnet --unfreeze 1    # YAMNet: layer14, its last separable convolution
"""

from __future__ import annotations

import argparse

from ..config import PROTOCOLS
from ._types import add_data_argument, add_output_arguments, non_negative_int, positive_float, positive_int

VERB = "finetune"
ORDER = 60
#: genrelib.finetune.BACKBONES' keys, kept here so ``--help`` does not import the module's dependencies.
BACKBONES = ("musicnn-msd", "musicnn-mtt", "vgg-msd", "vgg-mtt", "vggish", "yamnet")


def unfreeze_value(text: str) -> int | str:
    """``all`` or a non-negative integer (0: only the head continues in stage 2)."""
    return text if text == "all" else non_negative_int(text)


def add_parser(subparsers) -> argparse.ArgumentParser:
    from .train import add_config_arguments

    parser = subparsers.add_parser(
        VERB, help="fine-tune a backbone end to end (head only, then its top blocks) and compare",
        description="Stage 1 trains the CNN head on the frozen backbone (Table 1); stage 2 unfreezes the top "
                    "--unfreeze blocks at --finetune-learning-rate. Prints the plan and a time estimate first, "
                    "then frozen and fine-tuned test accuracy per run and their mean ± std. Runs resume.")
    add_data_argument(parser, collection=True)
    add_config_arguments(parser)
    group = parser.add_argument_group("fine-tuning")
    group.add_argument("--backbone", choices=BACKBONES, default="musicnn-msd",
                       help="pretrained network (default: musicnn-msd, whose weights install offline)")
    group.add_argument("--unfreeze", type=unfreeze_value, default=1, metavar="N|all",
                       help="blocks that train in stage 2, from the top (default: 1, fits a CPU; 'all': a GPU)")
    group.add_argument("--head-epochs", type=positive_int, default=None,
                       help="stage 1 epochs (default: the configuration's train.epochs, 30)")
    group.add_argument("--finetune-epochs", type=positive_int, default=10, help="stage 2 epochs (default: 10)")
    group.add_argument("--finetune-learning-rate", type=positive_float, default=1e-5,
                       help="stage 2 learning rate (default: 1e-5)")
    group.add_argument("--weights", default=None, help="vggish and yamnet only: 'random' or a .weights.h5 file")
    group.add_argument("--max-runs", type=positive_int, default=None, metavar="N",
                       help="only the first N runs of the seeds x folds (seed 0's folds first); a later call "
                            "with more resumes the same group")
    group.add_argument("--skip-runs", type=positive_int, default=0, metavar="K",
                       help="leave out the first K of those runs (trained by another call or machine)")
    group.add_argument("--per-genre", type=positive_int, default=None, metavar="N",
                       help="only the first N tracks of each genre (a quick look)")
    split = parser.add_argument_group("protocol and Table 1 (default: the configuration)")
    split.add_argument("--protocol", choices=PROTOCOLS, default=None)
    split.add_argument("--seed", type=non_negative_int, default=None, help="first seed")
    split.add_argument("--seeds", dest="n_seeds", type=positive_int, default=None, metavar="N",
                       help="repeat with N seeds (seed, seed+1, ...)")
    split.add_argument("--folds", type=positive_int, default=None, help="k of the kfold protocol")
    split.add_argument("--batch-size", type=positive_int, default=None)
    split.add_argument("--learning-rate", type=positive_float, default=None, help="stage 1 learning rate")
    split.add_argument("--augment", dest="augment_training", action=argparse.BooleanOptionalAction, default=None,
                       help="train on augmented copies of the training tracks too")
    add_output_arguments(parser, default_help="$GENRELIB_OUTPUT/runs or ./runs")
    return parser


def run(args: argparse.Namespace) -> int:
    from .. import data, finetune
    from .train import config_from_args

    config = config_from_args(args)
    root, _ = data.resolve_root(args.data)
    index = data.load_data(root, labels=config.data.labels or None, on_error=config.data.on_error)
    if args.per_genre is not None:
        index = data.example_tracks(index, per_genre=args.per_genre)
    run_dirs = finetune.run_protocol(
        index, backbone=args.backbone, unfreeze=args.unfreeze, config=config, head_epochs=args.head_epochs,
        finetune_epochs=args.finetune_epochs, finetune_learning_rate=args.finetune_learning_rate,
        weights=args.weights, runs_dir=args.output_dir, overwrite=args.overwrite, progress=not args.quiet,
        max_runs=args.max_runs, skip_runs=args.skip_runs)
    runs, table = finetune.summarize(run_dirs)
    print(f"{len(run_dirs)} run(s) in {run_dirs[0].parent} (data: {root})")
    print(runs[["seed", "fold", "n_test", "frozen", "finetuned", "difference"]].to_string(index=False))
    for stage in ("frozen", "finetuned", "difference"):
        row = table.loc[stage]
        print(f"{stage:>10s}: test accuracy {row['mean']:+.4f} ± {row['std']:.4f}" if stage == "difference" else
              f"{stage:>10s}: test accuracy {row['mean']:.4f} ± {row['std']:.4f}")
    print(table.attrs["protocol"])
    return 0
