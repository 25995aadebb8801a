"""Build a GTZAN-shaped stand-in of any size from real clips: either copy users have, to run every code path.

Usage:
    python tools/make_fullsize_gtzan.py archive OUT [--source DIR] [--per-genre 100]
        -> OUT/genres.tar.gz: genres/<genre>/<genre>.000NN.au (Sun AU, 16-bit, 22 050 Hz), as the original
    python tools/make_fullsize_gtzan.py kaggle OUT [--source DIR] [--per-genre 100]
        -> OUT/Data/genres_original/<genre>/<genre>.000NN.wav beside Data/images_original/ and
           Data/features_{3,30}_sec.csv, with an unreadable jazz.00054.wav, as the Kaggle re-upload

Each of the ``per-genre`` ids of a genre is a distinct, deterministic variant of one of that genre's real clips
in ``--source`` (default ``$GENRELIB_DATA``, the 100-clip mini set): another circular offset, a speed change of at
most 4 % (pitch and tempo move together, as with tape) and a gain change of -3 to +1 dB; no variant repeats the
bytes of its source or of another id. Variants of one clip fall on both sides of any split, so an accuracy measured
on this set means nothing: it exists to run downloads, validation, skipping and every protocol at full size, and is
never reported as a result.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

SAMPLE_RATE = 22050
#: The one unreadable file of the Kaggle copy.
BROKEN_TRACK = "jazz.00054"


def variant(y: np.ndarray, *, genre: str, number: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The deterministic variant ``number`` of clip ``y`` (same length, float32 in [-1, 1])."""
    import librosa

    seed = int.from_bytes(hashlib.sha256(f"{genre}.{number:05d}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    speed = rng.uniform(0.96, 1.04)
    changed = librosa.resample(y, orig_sr=sr, target_sr=int(round(sr / speed)))
    changed = np.resize(np.roll(changed, int(rng.integers(1, len(changed)))), len(y))  # wraps to the length
    gain = 10 ** (rng.uniform(-3.0, 1.0) / 20)
    return np.clip(changed * gain, -1.0, 1.0).astype(np.float32)


def source_clips(source: Path) -> dict[str, list[Path]]:
    """genre -> its real clips in ``source`` (any layout :func:`genrelib.data.load_gtzan` reads)."""
    from genrelib.data import load_gtzan

    index = load_gtzan(source)
    return {genre: list(map(Path, group["path"])) for genre, group in index.groupby("genre")}


def write_tracks(source: Path, folder: Path, *, per_genre: int, extension: str) -> list[Path]:
    """``folder/<genre>/<genre>.000NN.<extension>`` for ids 0 .. per_genre - 1 of every genre."""
    import soundfile as sf
    from tqdm.auto import tqdm

    from genrelib import audio

    written = []
    clips = source_clips(source)
    for genre, paths in tqdm(sorted(clips.items()), desc=f"{extension} tracks", unit="genre"):
        originals = [audio.load(path, sr=SAMPLE_RATE) for path in paths]
        (folder / genre).mkdir(parents=True, exist_ok=True)
        for number in range(per_genre):
            y = variant(originals[number % len(originals)], genre=genre, number=number)
            target = folder / genre / f"{genre}.{number:05d}.{extension}"
            sf.write(target, y, SAMPLE_RATE, format=extension.upper(), subtype="PCM_16")
            written.append(target)
    return written


def make_archive(source: Path, out: Path, *, per_genre: int) -> Path:
    """Copy 1: ``out/genres.tar.gz`` holding ``genres/<genre>/<genre>.000NN.au``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        write_tracks(source, Path(tmp) / "genres", per_genre=per_genre, extension="au")
        archive = out / "genres.tar.gz"
        with tarfile.open(archive.with_suffix(".part"), "w:gz", compresslevel=1) as tar:
            tar.add(Path(tmp) / "genres", arcname="genres")
        archive.with_suffix(".part").replace(archive)
    return archive


def make_kaggle(source: Path, out: Path, *, per_genre: int) -> Path:
    """Copy 2: the Kaggle tree under ``out/Data`` with an unreadable ``jazz.00054.wav``; returns ``out``."""
    data = out / "Data"
    tracks = write_tracks(source, data / "genres_original", per_genre=per_genre, extension="wav")
    broken = data / "genres_original" / "jazz" / f"{BROKEN_TRACK}.wav"
    broken.write_bytes(b"\x00" * 4096 + b"not a RIFF header" * 64)  # as unreadable as the real one
    for path in tracks:
        genre, number = path.stem.split(".")
        image = data / "images_original" / genre / f"{genre}{number}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(_TINY_PNG)
    header = "filename,length,chroma_stft_mean,label\n"
    (data / "features_30_sec.csv").write_text(header + "".join(
        f"{p.name},661794,0.35,{p.parent.name}\n" for p in tracks))
    (data / "features_3_sec.csv").write_text(header + "".join(
        f"{p.stem}.{k}.wav,66149,0.35,{p.parent.name}\n" for p in tracks for k in range(10)))
    return out


# A 1x1 grey PNG: the spectrogram images of the Kaggle copy are never read, only their presence matters.
_TINY_PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010800000000"
                          "3a7e9b550000000a49444154789c6360000000020001e221bc330000000049454e44ae426082")


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("copy", choices=("archive", "kaggle"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", type=Path, default=os.environ.get("GENRELIB_DATA"),
                        help="real clips to vary (default $GENRELIB_DATA)")
    parser.add_argument("--per-genre", type=int, default=100, help="tracks per genre (default 100: full size)")
    args = parser.parse_args(argv)
    if args.source is None:
        parser.error("--source is required when GENRELIB_DATA is not set")
    if args.copy == "archive":
        print(make_archive(args.source, args.out, per_genre=args.per_genre))
    else:
        print(make_kaggle(args.source, args.out, per_genre=args.per_genre) / "Data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
