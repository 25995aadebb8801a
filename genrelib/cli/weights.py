"""``genrelib weights``: get pretrained weights into the cache and check them.

    genrelib weights vggish --download                         # official checkpoint, size and sha256 checked
    genrelib weights vggish --from-checkpoint vggish_model.ckpt [--pca vggish_pca_params.npz]
    genrelib weights vggish --from-hub https://tfhub.dev/google/vggish/1   # or a SavedModel folder
    genrelib weights yamnet --from-tflite yamnet_classification.tflite   # TF Hub's int8 TF-Lite file
    genrelib weights yamnet --from-h5 yamnet.h5                # the official float Keras weights
    genrelib weights yamnet --download                         # yamnet.h5 (no published sha256)
    genrelib weights check                                     # VGGish smoke test; YAMNet speech check
"""

from __future__ import annotations

import argparse
import re
import sys

from ._types import add_output_arguments

VERB = "weights"
ORDER = 25

def sha256_choice(text: str) -> str | None:
    """``official`` -> the pinned digest of Google's file (a third-party pin: Google publishes none), ``none`` ->
    no check, else 64 hex digits."""
    if text.lower() == "official":
        from ..vggish import CHECKPOINT_SHA256

        return CHECKPOINT_SHA256
    if text.lower() == "none":
        return None
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not 'official', 'none' or a 64-digit hex sha256")
    return text.lower()


def add_parser(subparsers):
    parser = subparsers.add_parser(VERB, help="get and check pretrained weights (VGGish, YAMNet)",
                                   description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    convert = actions.add_parser("vggish", help="convert official VGGish weights into the Keras weight cache")
    source = convert.add_mutually_exclusive_group()
    source.add_argument("--from-checkpoint", metavar="PATH", help="the slim checkpoint vggish_model.ckpt")
    source.add_argument("--from-hub", metavar="HANDLE_OR_DIR",
                        help="a TF Hub / Kaggle handle (https://tfhub.dev/google/vggish/1) or a SavedModel folder")
    source.add_argument("--download", action="store_true",
                        help="download the official checkpoint (291 MB, size- and sha256-checked) and convert it")
    convert.add_argument("--pca", metavar="PATH", help="vggish_pca_params.npz for the optional post-processing")
    convert.add_argument("--sha256", type=sha256_choice, default="official", metavar="HEX|official|none",
                         help="expected sha256 of --from-checkpoint (default: official; 'none' for your own)")
    add_output_arguments(convert, default_help="$GENRELIB_CACHE/weights")
    _add_yamnet_parser(actions)
    check = actions.add_parser("check", help="run the official VGGish smoke test and the YAMNet speech check "
                                             "on the converted weights")
    check.add_argument("--weights-dir", default=None, help="weight cache folder (default: $GENRELIB_CACHE/weights)")
    return parser


def _add_yamnet_parser(actions) -> None:
    convert = actions.add_parser("yamnet", help="convert official YAMNet weights into the Keras weight cache")
    source = convert.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-tflite", metavar="PATH",
                        help="TF Hub's yamnet_classification.tflite (lite-model/yamnet/classification/tflite/1)")
    source.add_argument("--from-h5", metavar="PATH", help="the official float Keras weights yamnet.h5")
    source.add_argument("--download", action="store_true",
                        help="download the official yamnet.h5 (no published sha256: its digest is recorded)")
    convert.add_argument("--url", default=None, metavar="URL",
                         help="with --download: a mirror of yamnet.h5 (default: Google's storage)")
    convert.add_argument("--sha256", type=_tflite_sha256, default="official", metavar="HEX|official|none",
                         help="expected sha256 of --from-tflite (default: official; 'none' for another file)")
    add_output_arguments(convert, default_help="$GENRELIB_CACHE/weights")


def _tflite_sha256(text: str) -> str | None:
    if text.lower() == "official":
        from ..yamnet import TFLITE_SHA256

        return TFLITE_SHA256
    return sha256_choice(text)


def run(args) -> int:
    from .. import vggish

    if args.action == "check":
        return _check(vggish, args.weights_dir) | _check_yamnet(args.weights_dir)
    if args.action == "yamnet":
        return _convert_yamnet(args)
    folder = args.output_dir
    has_source = bool(args.download or args.from_checkpoint or args.from_hub)
    if not has_source and not args.pca:
        print("genrelib weights vggish: nothing to do: give --download, --from-checkpoint PATH, "
              "--from-hub HANDLE_OR_DIR or --pca PATH", file=sys.stderr)
        return 1
    existing = [p for p, wanted in ((vggish.converted_weights_path(folder), has_source),
                                    (vggish.pca_params_path(folder), bool(args.pca))) if wanted and p.is_file()]
    if existing and not args.overwrite:
        print(f"genrelib weights vggish: {existing[0]} already exists; pass --overwrite to replace it",
              file=sys.stderr)
        return 1
    if args.download:
        checkpoint = vggish.download_checkpoint(force_overwrite=args.overwrite, progress=not args.quiet)
        target = vggish.convert_checkpoint(checkpoint, pca=args.pca, folder=folder)
    elif args.from_checkpoint:
        target = vggish.convert_checkpoint(args.from_checkpoint, sha256=args.sha256, pca=args.pca, folder=folder)
    elif args.from_hub:
        target = vggish.convert_saved_model(args.from_hub, pca=args.pca, folder=folder)
    else:
        target = vggish.convert_pca(args.pca, folder=folder)
    if not args.quiet:
        print(f"wrote {target}")
        if has_source:
            info = vggish.converted_weights_info(folder)
            print(f"  source {info['source']} (sha256 {info['source_sha256']})")
            print("  next: `genrelib weights check` runs the official smoke test")
    return 0


def _convert_yamnet(args) -> int:
    from .. import yamnet

    folder = args.output_dir
    if yamnet.converted_weights_path(folder).is_file() and not args.overwrite:
        print(f"genrelib weights yamnet: {yamnet.converted_weights_path(folder)} already exists; pass --overwrite "
              f"to replace it", file=sys.stderr)
        return 1
    if args.url and not args.download:
        print("genrelib weights yamnet: --url only applies with --download", file=sys.stderr)
        return 2
    if args.from_tflite:
        target = yamnet.convert_tflite(args.from_tflite, sha256=args.sha256, folder=folder)
    else:
        path = args.from_h5 or yamnet.download_h5(url=args.url or yamnet.H5_URL, force_overwrite=args.overwrite,
                                                  progress=not args.quiet)
        target = yamnet.convert_h5(path, folder=folder)
    if not args.quiet:
        info = yamnet.converted_weights_info(folder)
        print(f"wrote {target}")
        print(f"  source {info['source']} (sha256 {info['source_sha256']}), activation {info['activation']}")
        print("  next: `genrelib weights check` runs the speech.wav check")
    return 0


def _check_yamnet(folder) -> int:
    """The YAMNet check when its weights are converted (0 when they are not: nothing to check)."""
    from .. import yamnet
    from ..errors import WeightsError

    if not yamnet.converted_weights_available(folder):
        return 0
    info = yamnet.converted_weights_info(folder)
    try:
        result = yamnet.smoke_test(folder=folder)
    except WeightsError as exc:
        print(f"genrelib weights check: YAMNet check skipped: {exc}", file=sys.stderr)
        return 0
    print(f"YAMNet check (last 0.975 s of {result['clip']}) on {info['path']}")
    print(f"  weights from {info['source']} (sha256 {info['source_sha256'][:16]}...), activation {info['activation']}")
    print(f"  top class {result['top_class']!r}, Speech {result['score']:.6f} (expected {result['expected']:.6f} "
          f"+- {yamnet.SMOKE_TEST['atol']})")
    print("PASS: the converted weights hear speech as the TF-Lite file does" if result["ok"] else
          "FAIL: these weights do not reproduce the TF-Lite file's Speech score")
    return 0 if result["ok"] else 1


def _check(vggish, folder) -> int:
    from .. import yamnet

    if not vggish.converted_weights_available(folder) and yamnet.converted_weights_available(folder):
        print("(no converted VGGish weights: VGGish smoke test skipped)")
        return 0
    if not vggish.converted_weights_available(folder):
        print(f"genrelib weights check: no converted VGGish weights at {vggish.converted_weights_path(folder)}, "
              f"so there is nothing to check (the smoke test is meaningful only for the real weights). Get "
              f"them with `genrelib weights vggish --download` or --from-checkpoint / --from-hub.", file=sys.stderr)
        return 1
    info = vggish.converted_weights_info(folder)
    table = vggish.smoke_test(folder=folder)
    print(f"VGGish smoke test (3 s of a 1 kHz sine, rtol {vggish.SMOKE_TEST['rtol']}) on {info['path']}")
    print(f"  weights from {info['source']} (sha256 {info['source_sha256'][:16]}...)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    required = table[table["required"]]
    if not vggish.pca_params_path(folder).is_file():
        print("  (post-processed rows skipped: no PCA parameters cached; add them with --pca)")
    if required["ok"].all():
        print("PASS: the converted weights reproduce the official embeddings")
        return 0
    print("FAIL: these weights do not reproduce the official embeddings (not the official checkpoint?)")
    return 1
