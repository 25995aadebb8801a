"""Reading audio files: decode, down-mix, resample, check.

Notebook: 01_data_exploration.

Decoding uses :mod:`soundfile` (libsndfile: WAV, AU, FLAC, Ogg Vorbis, MP3, ...) with librosa's
audioread fallback for containers libsndfile does not know (e.g. M4A with ffmpeg installed); resampling
uses soxr (``librosa.resample(..., res_type="soxr_hq")``). Every failure is an :class:`AudioError` that
names the file.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from .checks import positive_int, valid_audio
from .errors import AudioError, GenrelibWarning

__all__ = ["AUDIO_EXTENSIONS", "DECODING_VERSION", "load", "info", "resample", "decoding_versions"]

#: File extensions genrelib treats as audio (lower case, with the dot).
AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a", ".opus")

#: Changes whenever :func:`load` or :func:`resample` would give other samples; part of every cache key
#: downstream of decoding (augmented audio, embeddings, training runs).
DECODING_VERSION = "audio-1"


def _check_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file (pass the files in it, or --data for a GTZAN root)")
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise AudioError(f"{path}: unknown audio extension {path.suffix!r} (expected one of {', '.join(AUDIO_EXTENSIONS)})")
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    return path


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Return (samples [shape=(n, channels)] float32, native sample rate)."""
    try:
        with _quiet_mpeg_decoder(path), sf.SoundFile(path) as handle:
            expected = handle.frames
            data = handle.read(dtype="float32", always_2d=True)
            native_sr = handle.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        if path.suffix.lower() in {".m4a", ".opus", ".mp3"}:
            return _decode_audioread(path, exc)
        raise AudioError(f"{path}: not a readable audio file ({exc})") from exc
    expected = max(expected, _declared_wav_frames(path))
    if expected > 0 and data.shape[0] < expected:
        raise AudioError(f"{path}: truncated (header announces {expected} frames, file holds {data.shape[0]})")
    return data, native_sr


#: What libsndfile's MPEG decoder (mpg123) writes on file descriptor 2 about a damaged or non-MPEG file.
_MPEG_NOTES = re.compile(r"^Note: (Illegal Audio-MPEG-Header|Trying to resync|Hit end of \(available\) data|"
                         r"Skipped \d+ bytes)")


def _quiet_mpeg_decoder(path: Path):
    """mpg123's notes are dropped for MP3 files (the error genrelib raises says it better); other files: nothing."""
    if path.suffix.lower() != ".mp3":
        return contextlib.nullcontext()
    from .quiet import filtered_native_stderr

    return filtered_native_stderr(_MPEG_NOTES)


def _declared_wav_frames(path: Path) -> int:
    """Frame count a PCM WAV header announces (libsndfile silently shortens it to what the file holds)."""
    if path.suffix.lower() != ".wav":
        return 0
    import wave

    try:
        with wave.open(str(path), "rb") as handle:
            return handle.getnframes()
    except (wave.Error, EOFError, OSError):
        return 0  # not plain PCM (e.g. float or extensible WAV): rely on libsndfile's own checks


def _decode_audioread(path: Path, first_error: Exception) -> tuple[np.ndarray, int]:
    import librosa

    try:
        with warnings.catch_warnings(), _quiet_mpeg_decoder(path):
            warnings.simplefilter("ignore")
            y, native_sr = librosa.load(path, sr=None, mono=False)
    except Exception:  # audioread raises many unrelated types, with messages that mislead ("possibly a pipe?")
        raise AudioError(f"{path}: not a readable audio file (neither libsndfile nor the fallback decoder "
                         f"can decode it)") from None
    return np.atleast_2d(y).T.astype(np.float32), int(native_sr)


def resample(y: np.ndarray, *, orig_sr: float, target_sr: float) -> np.ndarray:
    """``y`` (last axis = time) at ``target_sr``: soxr "HQ" through librosa, the one resampler of genrelib, so a
    file loaded at a rate and an array resampled to it give identical samples. Unchanged when the rates agree."""
    if orig_sr == target_sr:
        return y
    import librosa

    return librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq", axis=-1)


def decoding_versions() -> dict[str, str]:
    """What decides the samples :func:`load` returns: this module's :data:`DECODING_VERSION`, the decoder
    (soundfile, libsndfile) and the resampler (soxr through librosa)."""
    from .storage import library_versions

    return {"decoding": DECODING_VERSION, "libsndfile": sf.__libsndfile_version__,
            **library_versions("soundfile", "soxr", "librosa")}


def load(
    path: str | os.PathLike,
    *,
    sr: int | None = 16000,
    mono: bool = True,
    min_duration: float = 0.0,
    allow_silence: bool = False,
) -> np.ndarray:
    """Load an audio file as float32, optionally down-mixed and resampled.

    Notebook: 01_data_exploration.

    Parameters
    ----------
    path : str or PathLike
        Any file with an extension in :data:`AUDIO_EXTENSIONS`.
    sr : int > 0 or None
        Target sample rate in Hz (16 000 is VGGish's and musicnn's rate); ``None`` keeps the file's rate.
    mono : bool
        Average the channels (a stereo file loads as mono).
    min_duration : float >= 0 [seconds]
        Refuse clips shorter than this (0.96 s is one VGGish patch).
    allow_silence : bool
        Accept an all-zero clip; by default silence is an error since it carries no genre.

    Returns
    -------
    y : np.ndarray [shape=(n,) if mono else (channels, n)], float32

    Raises
    ------
    AudioError
        Unknown extension, missing, empty, truncated or undecodable file, NaN samples, silence, too short.
    """
    path = _check_path(path)
    if sr is not None:
        sr = positive_int(sr, "sr")
    data, native_sr = _decode(path)
    if data.shape[0] == 0:
        raise AudioError(f"{path}: holds no audio samples")
    y = data.mean(axis=1) if mono else data.T
    # The decoded samples are checked before resampling: the resampler refuses NaN without naming the file.
    for channel in np.atleast_2d(y):
        valid_audio(channel, name="audio", source=str(path), allow_silence=allow_silence)
    peak = float(np.max(np.abs(y)))
    if peak > FLOAT_PEAK_LIMIT:
        warnings.warn(f"{path}: samples reach {peak:.3g}, far outside [-1, 1] (a float file written without "
                      f"scaling?); used as they are", GenrelibWarning, stacklevel=2)
    duration = y.shape[-1] / native_sr
    if duration < min_duration:
        raise AudioError(f"{path}: clip lasts {duration:.3f} s, shorter than the required {min_duration:.3f} s")
    if sr is not None and native_sr != sr:
        y = resample(y, orig_sr=native_sr, target_sr=sr).astype(np.float32)
    return np.ascontiguousarray(y, dtype=np.float32)


#: Float samples beyond this magnitude are almost surely unscaled, not loud music (which clips at 1).
FLOAT_PEAK_LIMIT = 4.0


def info(path: str | os.PathLike) -> dict:
    """Header facts without decoding: ``samplerate``, ``channels``, ``frames``, ``duration`` [s], ``format``."""
    path = _check_path(path)
    try:
        meta = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from exc
    return {
        "samplerate": int(meta.samplerate),
        "channels": int(meta.channels),
        "frames": int(meta.frames),
        "duration": float(meta.duration),
        "format": meta.format,
    }
