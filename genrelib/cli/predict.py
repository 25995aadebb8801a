"""``genrelib predict FILE... [--model RUN_DIR | --zero-shot [--labels A,B]] [--plot OUT.png]``: label and
probabilities of audio files.

A trained run answers with its own labels (GTZAN's genres, or the collection it was trained on).
``--zero-shot`` needs no trained run: YAMNet's AudioSet scores of the ten genre classes (or of ``--labels``,
each of which needs an AudioSet class) decide. ``--plot`` also writes one file's figure: its label probabilities
beside those of each patch over time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    parser.add_argument("--plot", default=None, metavar="OUT.png",
                        help="also write the figure of the (one) FILE: each genre's probability and each patch's "
                             "over time (.png, .pdf or .svg)")
    parser.add_argument("--labels", default=None, metavar="A,B,...",
                        help="with --zero-shot: choose among these labels instead of GTZAN's ten genres; each "
                             "needs an AudioSet class of the same name (or '<label> music')")
    return parser


def _usage_error(args: argparse.Namespace) -> str | None:
    """Why the options do not go together, or None."""
    from ..predict import FIGURE_SUFFIXES

    if args.zero_shot and args.model is not None:
        return "--zero-shot uses no trained run; drop --model"
    if args.labels is not None and not args.zero_shot:
        return "--labels is for --zero-shot; a trained run answers with its own labels"
    if args.plot is not None:
        if args.zero_shot:
            return "--plot draws a trained run's per-patch probabilities; drop --zero-shot"
        if len(args.files) != 1:
            return f"--plot draws one file's figure; give one FILE, not {len(args.files)}"
        if not args.plot.lower().endswith(FIGURE_SUFFIXES):
            return f"--plot {args.plot}: write the figure as .png, .pdf or .svg"
    return None


def run(args: argparse.Namespace) -> int:
    from ..evaluate import prediction_labels
    from ..predict import load_classifier, predict_files

    from .. import audio
    from ..errors import AudioError

    if problem := _usage_error(args):
        print(f"genrelib predict: error: {problem}", file=sys.stderr)
        return 2
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
        from ..config import GENRES
        from ..predict import zero_shot

        labels = tuple(x.strip() for x in args.labels.split(",") if x.strip()) if args.labels else GENRES
        table = zero_shot(usable, on_error="report", labels=labels)
        chosen = "the ten genres" if labels == GENRES else ", ".join(labels)
        print(f"model: zero-shot YAMNet (AudioSet class scores of {chosen})")
    else:
        classifier = load_classifier(args.model)
        table = predict_files(usable, classifier=classifier, on_error="report")
        print(f"model: {classifier.run_dir} ({classifier.meta['backend']['name']} embeddings; labels "
              f"{', '.join(classifier.labels)})")
    failed = table["error"].notna()
    labels = prediction_labels(table)
    # Rows as dicts: a label may hold spaces or non-ASCII letters, which itertuples cannot name.
    for row, error in zip(table.to_dict("records"), failed):
        if error:
            print(f"genrelib predict: error: {row['error']}", file=sys.stderr)
            continue
        ranked = sorted(labels, key=lambda label: -row[f"p_{label}"])
        probabilities = "  ".join(f"{label} {row[f'p_{label}']:.3f}" for label in ranked)
        print(f"{row['path']}: {row['genre']} ({row['probability']:.3f})  |  {probabilities}")
    if args.plot is not None and not failed.any():
        from ..predict import explain_file, write_prediction_figure

        # Embeds the file once more: a second or so for one file, and the printed line keeps one code path. A
        # write that fails is one line from genrelib.cli (StorageError).
        probabilities, timeline = explain_file(usable[0], classifier=classifier)
        print(f"figure: {write_prediction_figure(args.plot, probabilities, timeline, title=Path(usable[0]).name)}")
    return 1 if failed.any() or len(usable) < len(args.files) else 0  # 1 = some inputs failed, the others done
