"""``genrelib predict FILE... [--model RUN_DIR]``: genre and probabilities of audio files."""

from __future__ import annotations

import argparse
import sys

VERB = "predict"
ORDER = 60


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(VERB, help="predict the genre of audio files with a trained run",
                                   description="Print the most probable genre and every genre's probability "
                                               "for each file (any format, sample rate and channel count).")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--model", default=None, metavar="RUN_DIR",
                        help="a run directory from genrelib train (default: the most recent run under runs/)")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..config import GENRES
    from ..predict import load_classifier, predict_files

    from .. import audio
    from ..errors import AudioError

    usable = []
    for path in args.files:  # before TensorFlow and the model load: a wrong path costs nothing
        try:
            audio.info(path)
            usable.append(path)
        except AudioError as exc:
            print(f"genrelib predict: error: {exc}", file=sys.stderr)
    if not usable:
        return 1
    classifier = load_classifier(args.model)
    table = predict_files(usable, classifier=classifier, on_error="report")
    print(f"model: {classifier.run_dir} ({classifier.meta['backend']['name']} embeddings)")
    failed = table["error"].notna()
    for row, error in zip(table.itertuples(), failed):
        if error:
            print(f"genrelib predict: error: {row.error}", file=sys.stderr)
            continue
        ranked = sorted(GENRES, key=lambda genre: -getattr(row, f"p_{genre}"))
        probabilities = "  ".join(f"{genre} {getattr(row, f'p_{genre}'):.3f}" for genre in ranked)
        print(f"{row.path}: {row.genre} ({row.probability:.3f})  |  {probabilities}")
    return 1 if failed.any() or len(usable) < len(args.files) else 0  # 1 = some inputs failed, the others done
