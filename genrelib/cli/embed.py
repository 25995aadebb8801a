"""``genrelib embed``: audio -> cached embedding sequences (one ``.npz`` per clip) and a summary.

    genrelib embed                                  # every clip of $GENRELIB_DATA, backend auto
    genrelib embed --backend vggish --data DIR
    genrelib embed --backend mfcc a.wav b.ogg --output-dir out/
    genrelib embed --engine ray --data DIR --output-dir s3://bucket/embeddings   # Parquet, on Ray (docs/scaling.md)
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._types import add_data_argument, add_engine_arguments, add_output_arguments, clips_to_embed, positive_int

VERB = "embed"
ORDER = 30


def add_parser(subparsers):
    parser = subparsers.add_parser(VERB, help="embed clips with VGGish / YAMNet / musicnn / mfcc (cached)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="audio files (default: every clip of --data)")
    parser.add_argument("--backend", default="auto",
                        help="auto (VGGish if its weights are converted, else the best offline backend), vggish, yamnet, "
                             "musicnn-msd, musicnn-mtt, vgg-msd, vgg-mtt or mfcc (default: auto)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="patches per forward pass (default: the backend's, 64 for VGGish)")
    add_data_argument(parser, collection=True)
    add_output_arguments(parser, default_help="$GENRELIB_CACHE/embeddings; --engine ray: $GENRELIB_CACHE/catalogue")
    add_engine_arguments(parser)
    return parser


def run(args) -> int:
    if args.engine == "ray":
        return _run_on_ray(args)
    from .. import embed

    index = clips_to_embed(args)
    backend = embed.get_backend(args.backend)
    result = embed.embed_dataset(index, backend=backend, cache_dir_=args.output_dir, batch_size=args.batch_size,
                                 overwrite=args.overwrite, progress=not args.quiet, on_error="report")
    failed = result[result["error"].notna()]
    done = result[result["error"].isna()]
    folder = Path(done["embedding_path"].iloc[0]).parent if len(done) else None
    print(f"{len(done)} of {len(result)} clips embedded with backend {backend.name} "
          f"(weights {backend.weights_checksum()[:16]}, front end {backend.front_end_version}): "
          f"{int(done['n_patches'].sum())} patches of {backend.embedding_dim} values, in {folder}")
    for error in failed["error"]:
        print(f"genrelib embed: error: {error}", file=sys.stderr)
    return 1 if len(failed) else 0


def _run_on_ray(args) -> int:
    """``--engine ray``: embed files or a GTZAN root into Parquet (:func:`genrelib.scale.embed_catalogue`); one
    summary line. Exit status 0 when every clip is in the output, 1 when some failed or nothing was left to do."""
    from ..errors import ParameterError
    from ..scale import embed_catalogue
    from ..storage import cache_dir

    if args.batch_size:
        raise ParameterError("--batch-size sets the forward pass of --engine local; with --engine ray each actor "
                             "uses its backend's own (VGGish: 64 patches) and gets 16 clips at a time")
    result = embed_catalogue(clips_to_embed(args), backend=args.backend,
                             output=args.output_dir or cache_dir("catalogue"), address=args.address,
                             num_workers=args.num_workers, overwrite=args.overwrite, progress=not args.quiet)
    attrs = result.attrs
    if attrs["n_new"] == 0 and attrs["n_errors"] == 0:
        print(f"nothing to do: all {attrs['n_items']} clips are already in {attrs['output']} (--overwrite redoes them)")
        return 1
    print(f"{attrs['n_items']} clips: {attrs['n_new']} embedded now, {attrs['n_skipped']} already in the output, "
          f"{attrs['n_errors']} errors; backend {attrs['backend']} on Ray ({attrs['num_workers']} model workers), "
          f"{attrs['seconds']:.1f} s -> {attrs['output']}")
    for error in result.loc[result["error"].notna(), "error"]:
        print(f"genrelib embed: error: {error}", file=sys.stderr)
    return 1 if attrs["n_errors"] else 0
