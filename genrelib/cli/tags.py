"""``genrelib tags FILE...``: the tags a pretrained musicnn network (or YAMNet's AudioSet classes) hears in
each file.

A first check for users that audio loading and the offline model work: metal.00003 should read like
"rock, fast, techno, loud, metal", classical.00001 like "classical, violin, strings".
``--backend yamnet`` prints AudioSet class names instead (scores averaged over 0.96 s patches every 0.48 s).
"""

from __future__ import annotations

import argparse
import sys

from ._types import positive_int

VERB = "tags"
ORDER = 35


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..musicnn import MODELS  # constants only: the module imports TensorFlow lazily

    parser = subparsers.add_parser(
        VERB, help="print the top musicnn tags (or YAMNet AudioSet classes) of audio files",
        description="Tag probabilities averaged over a file's patches, highest first (musicnn or YAMNet, offline).",
    )
    parser.add_argument("--backend", default="musicnn", choices=("musicnn", "yamnet"),
                        help="musicnn: 50 music tags (see --model); yamnet: 521 AudioSet classes (default: musicnn)")
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, ogg, flac, mp3, ...)")
    parser.add_argument("--model", default="MTT_musicnn", choices=MODELS,
                        help="musicnn network: MTT_*: MagnaTagATune tags (instruments, moods); MSD_*: Last.fm tags "
                             "(genres, eras)")
    parser.add_argument("--top", type=positive_int, default=5, help="tags to print per file (default: 5)")
    return parser


def run(args: argparse.Namespace) -> int:
    from .. import audio, musicnn, yamnet
    from ..errors import AudioError

    sr, min_duration = ((yamnet.SAMPLE_RATE, yamnet.YAMNetBackend.patch_seconds) if args.backend == "yamnet"
                        else (musicnn.SAMPLE_RATE, musicnn.PATCH_SECONDS))
    failed = 0
    for path in args.files:
        try:
            y = audio.load(path, sr=sr, min_duration=min_duration)  # as embed, predict
        except AudioError as exc:
            print(f"genrelib tags: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.backend == "yamnet":
            tags = yamnet.top_classes(y, sr=sr, top=args.top)
        else:
            tags = musicnn.top_tags(y, sr=sr, model=args.model, top=args.top)
        print(f"{path}: " + ", ".join(f"{tag} {probability:.2f}" for tag, probability in tags))
    if failed:
        print(f"genrelib tags: {failed} of {len(args.files)} file(s) could not be read", file=sys.stderr)
    return 1 if failed else 0  # the CLI's convention: 1 = some inputs failed, the others were done
