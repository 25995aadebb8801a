"""argparse types and shared flags, so every verb spells options the same way."""

from __future__ import annotations

import argparse


def _integer_at_least(text: str, minimum: int, meaning: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} must be a {meaning} integer")
    return value


def positive_int(text: str) -> int:
    return _integer_at_least(text, 1, "positive")


def non_negative_int(text: str) -> int:
    return _integer_at_least(text, 0, "non-negative")


def jobs_count(text: str) -> int | str:
    """``auto`` or a positive integer (how many worker processes)."""
    return "auto" if text == "auto" else _integer_at_least(text, 1, "positive")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1) (a share of the tracks)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a fraction in [0, 1)")
    return value


def clips_to_embed(args: argparse.Namespace):
    """``args.files`` as a list, else every clip of ``--data`` (GTZAN or a collection: an index; says where it was
    found unless ``--quiet``): what ``genrelib embed`` embeds on either engine."""
    if args.files:
        return list(args.files)
    from .. import data

    root, found_via = data.resolve_root(args.data)
    index = data.load_data(root, on_error=getattr(args, "on_error", None) or "raise")
    if not args.quiet:
        skipped = data.skipped_tracks(index)
        print(f"data: {root} ({found_via}), {len(index)} clips{'; skipped: ' + skipped if skipped else ''}")
    return index


def add_data_argument(parser: argparse.ArgumentParser, *, on_error: bool = True, collection: bool = False) -> None:
    """``--data`` and (``on_error``) ``--on-error``, for every verb that reads the GTZAN tracks (``collection``:
    or any folder-per-label collection, :func:`genrelib.collection.load_collection`)."""
    parser.add_argument(
        "--data", default=None,
        help="GTZAN root: the folder holding genres/ (original archive), the unzipped Kaggle folder, its Data/ or "
             "its genres_original/; default: $GENRELIB_DATA, then ./data/gtzan" +
             ("; or your own collection: a folder of label folders (DIR/<label>/<file>) or a CSV manifest with "
              "path,label[,group] columns" if collection else ""),
    )
    if on_error:
        parser.add_argument(
            "--on-error", choices=("raise", "skip"), default=None,
            help="a track that cannot be read (jazz.00054.wav of the Kaggle copy): stop with an error (raise, the "
                 "default) or leave it out and name it in the results (skip); default: the configuration's "
                 "data.on_error",
        )


def add_output_arguments(parser: argparse.ArgumentParser, *, default_help: str) -> None:
    parser.add_argument("--output-dir", default=None, help=f"where to write (default: {default_help})")
    parser.add_argument("--overwrite", action="store_true", help="recompute items already on disk")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


#: Engines of ``--engine`` (the same tuple as :data:`genrelib.scale.ENGINES`, spelled out so that ``--help``
#: needs no heavy import).
ENGINES = ("local", "ray")


def add_engine_arguments(parser: argparse.ArgumentParser, *, workers: bool = True) -> None:
    """``--engine``, ``--address`` and (``workers``) ``--num-workers``: where a stage runs (here, or on Ray)."""
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: this process (default); ray: Ray Data on a local or remote cluster "
                             "(needs genrelib[scale])")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address for --engine ray (default $RAY_ADDRESS, else a local 2-CPU Ray)")
    if not workers:
        return  # a stage without a model runs as tasks on every CPU of the cluster
    parser.add_argument("--num-workers", type=positive_int, default=1,
                        help="model actors for --engine ray: one model copy each, one GPU each where present "
                             "(default: 1)")
