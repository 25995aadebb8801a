"""``genrelib augment``: augment the training tracks of a split into the audio cache; write the manifest CSV.

Example::

    genrelib augment --split paper --methods time_stretch pitch_shift --copies 2 --seed 0
"""

from __future__ import annotations

import argparse

from ..config import AugmentConfig
from ._types import add_data_argument, add_engine_arguments, add_output_arguments, non_negative_int, positive_int

VERB = "augment"
ORDER = 20

#: Splits this verb can build from the track index (genrelib.data.split_random / split_fault_filtered).
SPLITS = ("paper", "fault_filtered")
#: Same list as genrelib.augment.METHODS, spelled out so ``--help`` needs no heavy import.
METHOD_NAMES = ("time_stretch", "pitch_shift", "white_noise")


def add_parser(subparsers) -> argparse.ArgumentParser:
    defaults = AugmentConfig()
    parser = subparsers.add_parser(
        VERB, help="augment the training tracks of a split (cached 16 kHz FLAC) and write the manifest CSV",
        description="Augment the training tracks of a split into the audio cache (16 kHz FLAC files keyed by "
                    "content and parameters; a re-run resumes) and write the manifest CSV.",
    )
    parser.add_argument("--split", choices=SPLITS, default="paper",
                        help="'paper': stratified random 65/10/25 %% track split (seeded by --seed); "
                             "'fault_filtered': Kereliuk et al. 2015 (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", choices=METHOD_NAMES, default=list(defaults.methods),
                        help="augmentation methods (default: all three)")
    parser.add_argument("--copies", type=positive_int, default=defaults.copies_per_method,
                        help="augmented copies per method and track (default: %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seeds the paper split and every copy's parameters (default: %(default)s)")
    parser.add_argument("--n-jobs", type=positive_int, default=2, help="worker processes (default: %(default)s)")
    parser.add_argument("--cache-dir", default=None,
                        help="audio cache root (default: $GENRELIB_CACHE/augment)")
    add_data_argument(parser, collection=True)
    add_output_arguments(parser, default_help="$GENRELIB_OUTPUT/results, else ./results")
    add_engine_arguments(parser, workers=False)  # --engine ray: one Ray task per source track (genrelib.scale)
    return parser


def manifest_name(split: str, seed: int) -> str:
    return f"augment_manifest_{split}_seed{seed}.csv"


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .. import augment, data
    from ..storage import atomic_write_csv, output_dir

    folder = Path(args.output_dir) if args.output_dir else output_dir("results")
    target = folder / manifest_name(args.split, args.seed)
    if target.exists() and not args.overwrite:
        print(f"genrelib augment: nothing to do: {target} exists (pass --overwrite to recompute)")
        return 1
    index = data.load_data(args.data, on_error=args.on_error or "raise")
    split = data.split_random(index, seed=args.seed) if args.split == "paper" else data.split_fault_filtered(index)
    config = AugmentConfig(methods=tuple(dict.fromkeys(args.methods)), copies_per_method=args.copies)
    if args.engine == "ray":
        from ..scale import augment_catalogue

        manifest = augment_catalogue(index, split, config=config, cache_dir=args.cache_dir, seed=args.seed,
                                     address=args.address, progress=not args.quiet, overwrite=args.overwrite)
        _raise_for_errors(manifest)
    else:
        manifest = augment.augment_split(index, split, config=config, cache_dir=args.cache_dir, seed=args.seed,
                                         n_jobs=args.n_jobs, progress=not args.quiet, overwrite=args.overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(target, manifest)
    n_augmented = int((manifest["method"] != "original").sum())
    print(f"genrelib augment: {n_augmented} augmented + {len(split.train)} original training items from "
          f"{len(split.train)} tracks (split {split.protocol}, seed {args.seed}) -> {target}")
    return 0


def _raise_for_errors(manifest) -> None:
    """As ``augment_split`` does by default: after the pass (finished items stay cached), one error."""
    from ..errors import AudioError

    failed = manifest.loc[manifest["error"].notna()].drop_duplicates("track_id")
    if len(failed):
        raise AudioError(f"{len(failed)} of {manifest['track_id'].nunique()} training clips could not be augmented "
                         "(the others are cached; a re-run resumes):\n  " + "\n  ".join(failed["error"]))
