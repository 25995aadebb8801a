"""``genrelib data download|validate|info|split`` - mirrors :mod:`genrelib.data`."""

from __future__ import annotations

import argparse

from ..config import PROTOCOLS
from ._types import add_data_argument, fraction, non_negative_int, positive_int

VERB = "data"
ORDER = 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(VERB, help="find, download, validate and split GTZAN")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    download = actions.add_parser("download", help="download and verify GTZAN (mini: 100 clips, full: 1000)")
    download.add_argument("kind", choices=("mini", "full"))
    download.add_argument("--dest", default=None, help="folder to unpack into (default ./data/gtzan[_mini])")
    download.add_argument("--url", default=None,
                          help="full: a mirror to fetch genres.tar.gz from instead of the published ones "
                               "(default: $GENRELIB_GTZAN_URL if set)")
    download.add_argument("--md5", default=None, help="full: the MD5 of the archive --url serves, when it is not "
                                                        "the published genres.tar.gz")
    download.add_argument("--force-overwrite", action="store_true")
    download.add_argument("--quiet", action="store_true")

    validate = actions.add_parser("validate", help="check every track: present, checksum, decodable, duration")
    add_data_argument(validate, on_error=False)
    validate.add_argument("--expected", choices=("auto", "full", "mini", "found"), default="auto")
    validate.add_argument("--no-decode", action="store_true", help="read headers only (fast)")
    validate.add_argument("--report", default=None, help="write the per-track report to this CSV file")

    info = actions.add_parser("info", help="tracks per genre, durations, sample rates")
    add_data_argument(info, collection=True)

    split = actions.add_parser("split", help="write a track split (JSON, with its seed)")
    add_data_argument(split, collection=True)
    split.add_argument("--protocol", choices=PROTOCOLS, default="paper")
    split.add_argument("--seed", type=non_negative_int, default=0)
    split.add_argument("--test-size", type=fraction, default=0.25, help="fraction of tracks in (0, 1)")
    split.add_argument("--valid-size", type=fraction, default=0.1, help="fraction of tracks in [0, 1)")
    split.add_argument("--k", type=positive_int, default=10)
    split.add_argument("--output", required=True, help="JSON file (kfold: one file per fold, _foldN appended)")
    return parser


def run(args: argparse.Namespace) -> int:
    return {"download": _download, "validate": _validate, "info": _info, "split": _split}[args.action](args)


def _download(args) -> int:
    from .. import data

    if args.kind == "mini" and (args.url or args.md5):
        from ..errors import ParameterError

        raise ParameterError("--url and --md5 apply to `download full` only")
    dest = data.download(args.kind, args.dest, force_overwrite=args.force_overwrite, progress=not args.quiet,
                         urls=(args.url,) if args.url else None, md5=args.md5)
    print(f"GTZAN {args.kind} ready in {dest}")
    return 0


def _validate(args) -> int:
    from .. import data

    if args.report:
        writable_file(args.report)
    report = data.validate(args.data, expected=args.expected, decode=not args.no_decode, progress=True)
    if args.report:
        from ..storage import atomic_write_csv

        atomic_write_csv(args.report, report)
    bad = report[~report["ok"]]
    print(f"{len(report)} tracks checked: {int(report['ok'].sum())} ok, {len(bad)} with problems; "
          f"checksums: {report['checksum'].value_counts().to_dict()}")
    for _, row in bad.head(20).iterrows():
        print(f"  {row['track_id']}: {row['problem']}")
    if len(bad) > 20:
        print(f"  ... and {len(bad) - 20} more (use --report FILE)")
    return 0 if bad.empty else 1


def writable_file(path: str) -> None:
    """Refuse, before any work, an output file whose folder does not exist."""
    from pathlib import Path

    from ..errors import ParameterError

    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise ParameterError(f"{path}: folder {folder} does not exist")


def _info(args) -> int:
    from .. import data

    index = data.load_data(args.data, on_error=args.on_error or "raise")
    skipped = data.skipped_tracks(index)
    kind = "labels" if data.split_groups(index) is not None else "genres"
    print(f"{len(index)} tracks{'; skipped: ' + skipped if skipped else ''}, {index['genre'].nunique()} {kind}, "
          f"{index['duration'].sum() / 3600:.2f} h of audio")
    print(index.groupby("genre").agg(tracks=("track_id", "size"), mean_duration_s=("duration", "mean"),
                                     samplerates=("samplerate", lambda s: sorted(set(s)))).to_string())
    return 0


def _split(args) -> int:
    from pathlib import Path

    from .. import data

    index = data.load_data(args.data, on_error=args.on_error or "raise")
    if args.protocol == "paper":
        splits = [data.split_random(index, test_size=args.test_size, valid_size=args.valid_size, seed=args.seed)]
    elif args.protocol == "fault_filtered":
        splits = [data.split_fault_filtered(index)]
    elif args.protocol == "artist":
        splits = data.split_by_artist(index, k=args.k, seed=args.seed, valid_size=args.valid_size)
    else:
        splits = data.kfold(index, k=args.k, seed=args.seed)
    writable_file(args.output)
    output = Path(args.output)
    for split in splits:
        path = output if split.fold is None else output.with_name(f"{output.stem}_fold{split.fold}{output.suffix}")
        split.to_json(path)
        print(f"{path}: {split.protocol} seed={split.seed} train={len(split.train)} valid={len(split.valid)} "
              f"test={len(split.test)}")
    return 0
