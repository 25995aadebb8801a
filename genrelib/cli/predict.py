"""``genrelib predict FILE... [--model RUN_DIR | --zero-shot]``: genre and probabilities of audio files.

``--zero-shot`` needs no trained run: YAMNet's AudioSet scores of the ten genre classes decide.
"""

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
    parser.add_argument("--zero-shot", action="store_true",
                        help="no trained run: the genre whose AudioSet class YAMNet scores highest (mean over "
                             "0.96 s patches; the scores are independent sigmoids, they do not sum to 1)")
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
    if args.zero_shot:
        if args.model is not None:
            print("genrelib predict: error: --zero-shot uses no trained run; drop --model", file=sys.stderr)
            return 2
        from ..predict import zero_shot

        table = zero_shot(usable, on_error="report")
        print("model: zero-shot YAMNet (AudioSet class scores of the ten genres)")
    else:
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
