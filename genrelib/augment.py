"""Data augmentation of training clips: time stretching, pitch shifting, white noise; cached, train-only.

Notebook: 02_augmentation.

The paper enlarges GTZAN with three methods but gives no parameters; the ranges are in
:class:`genrelib.config.AugmentConfig` with the reasons. Three layers:

* array functions - :func:`time_stretch`, :func:`pitch_shift`, :func:`add_white_noise` (float32 in, float32
  out, same length, deterministic) and :func:`apply_method`, which calls one of them by name;
* the dataset stage - :func:`augment_split` augments the *training* tracks of a split into a cache of 16 kHz
  FLAC files and returns a manifest, one row per training item (originals included); its parts are public so
  that another pool can run them (:func:`genrelib.scale.augment_catalogue`, on Ray):
  :func:`plan_augmentation` (every item, its parameters and cache path), :func:`augment_source` (one source
  decoded once, all its items written) and :meth:`AugmentPlan.manifest`;
* the guard - :func:`assert_no_leakage` refuses any table in which an item derives from a track that is
  not on the training side of the split; later stages call it before training.

The signal processing is librosa's (STFT phase vocoder, soxr resampling). :func:`time_stretch` and
:func:`pitch_shift` are exactly ``librosa.effects.time_stretch`` / ``pitch_shift`` with their default
2048-point STFT and 512-sample hop (128 ms / 32 ms at 16 kHz); the dataset stage computes a clip's STFT once
and feeds both methods from it, which gives the same numbers as calling them one by one.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import numbers
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from .checks import one_of, positive_int, positive_number, valid_audio
from .config import AugmentConfig, Config
from .errors import AudioError, DataError, GenrelibError, LeakageError, ParameterError

if TYPE_CHECKING:  # pandas loads only when a table is made: worker processes never need it
    import pandas as pd

__all__ = [
    "METHODS",
    "PAD_MODES",
    "N_FFT",
    "HOP_LENGTH",
    "time_stretch",
    "pitch_shift",
    "add_white_noise",
    "apply_method",
    "code_versions",
    "draw_params",
    "method_costs",
    "AugmentItem",
    "AugmentPlan",
    "plan_augmentation",
    "augment_source",
    "augment_split",
    "assert_no_leakage",
    "count_items",
]

#: Augmentation methods by name -> (keyword the method takes, AugmentConfig field with its range).
METHODS: dict[str, tuple[str, str]] = {
    "time_stretch": ("rate", "stretch_rate_range"),
    "pitch_shift": ("n_steps", "pitch_steps_range"),
    "white_noise": ("snr_db", "noise_snr_db_range"),
}

#: How :func:`time_stretch` fills a sped-up clip back to its length (``numpy.pad`` modes).
PAD_MODES = ("wrap", "constant")

#: STFT size of the phase vocoder: librosa's default, 2048 samples = 128 ms at 16 kHz (93 ms at 22 050 Hz).
N_FFT = 2048
#: STFT hop: a quarter window, 512 samples = 32 ms at 16 kHz (the overlap a phase vocoder needs).
HOP_LENGTH = N_FFT // 4

#: Changes whenever the numbers a method produces would change; part of every cache key.
ALGORITHM_VERSION = "augment-1"

# Largest amplitude a 16-bit file holds; louder augmented clips are scaled down to it (never clipped).
_PCM16_PEAK = 32767 / 32768


# ------------------------------------------------------------------------------------------ arrays

def _check_long_enough(y: np.ndarray) -> None:
    if y.size < N_FFT:
        raise AudioError(f"y has {y.size} samples, fewer than one {N_FFT}-sample analysis window")


def _stft(y: np.ndarray) -> np.ndarray:
    import librosa

    return librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)


def _stretch_spectrum(spectrum: np.ndarray, *, rate: float, n_samples: int) -> np.ndarray:
    """librosa's time stretch after its STFT: phase vocoder, then inverse STFT to ``round(n_samples/rate)``."""
    import librosa

    stretched = librosa.phase_vocoder(spectrum, rate=rate, hop_length=HOP_LENGTH, n_fft=N_FFT)
    return librosa.istft(stretched, hop_length=HOP_LENGTH, n_fft=N_FFT, length=int(round(n_samples / rate)),
                         dtype=np.float32)


def _fit_length(y: np.ndarray, n_samples: int, pad_mode: str) -> np.ndarray:
    if y.size >= n_samples:
        return y[:n_samples]
    return np.pad(y, (0, n_samples - y.size), mode=pad_mode)


def _time_stretch_spectrum(spectrum: np.ndarray, *, n_samples: int, rate: float, pad_mode: str) -> np.ndarray:
    return _fit_length(_stretch_spectrum(spectrum, rate=rate, n_samples=n_samples), n_samples, pad_mode)


def _pitch_shift_spectrum(spectrum: np.ndarray, *, n_samples: int, sr: int, n_steps: float) -> np.ndarray:
    """``librosa.effects.pitch_shift`` after its STFT: stretch by 2^(-n/12), resample back (soxr_hq)."""
    import librosa

    rate = 2.0 ** (-float(n_steps) / 12)
    stretched = _stretch_spectrum(spectrum, rate=rate, n_samples=n_samples)
    shifted = librosa.resample(stretched, orig_sr=float(sr) / rate, target_sr=sr, res_type="soxr_hq")
    return librosa.util.fix_length(shifted, size=n_samples).astype(np.float32, copy=False)


def _finite_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ParameterError(f"{name}={value!r} must be a finite number")
    return float(value)


def time_stretch(y: np.ndarray, *, rate: float, pad_mode: str = "wrap") -> np.ndarray:
    """Change the tempo by ``rate`` without changing the pitch; the output keeps the input's length.

    Notebook: 02_augmentation.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio, at least 2048 samples (one analysis window).
    rate : number > 0
        Speed factor: 1.25 plays 25 % faster, 0.8 plays 20 % slower (``librosa.effects.time_stretch``).
    pad_mode : {"wrap", "constant"}
        A sped-up clip (``rate > 1``) is shorter than ``y``; ``"wrap"`` continues it from its own start (the
        clip loops, so every frame stays music), ``"constant"`` appends silence. A slowed clip (``rate < 1``)
        is cut at the input's length.

    Returns
    -------
    y_stretched : np.ndarray [shape=(n,)], float32
        The first ``n`` samples of ``librosa.effects.time_stretch(y, rate=rate)``, looped or zero-padded
        to ``n`` when shorter.
    """
    y = valid_audio(y, allow_silence=True)
    rate = positive_number(rate, "rate")
    one_of(pad_mode, PAD_MODES, "pad_mode")
    _check_long_enough(y)
    return _time_stretch_spectrum(_stft(y), n_samples=y.size, rate=rate, pad_mode=pad_mode)


def pitch_shift(y: np.ndarray, *, sr: int, n_steps: float) -> np.ndarray:
    """Move the pitch by ``n_steps`` semitones (frequencies times 2^(n_steps/12)); duration unchanged.

    Notebook: 02_augmentation.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio, at least 2048 samples.
    sr : int > 0 [Hz]
        Sample rate of ``y``.
    n_steps : number [semitones]
        Fractional steps allowed; +2 turns 440 Hz into 493.9 Hz, -12 is an octave down.

    Returns
    -------
    y_shifted : np.ndarray [shape=(n,)], float32
        ``librosa.effects.pitch_shift(y, sr=sr, n_steps=n_steps)``: phase-vocoder stretch by
        2^(-n_steps/12), then soxr resampling back to ``n`` samples.
    """
    y = valid_audio(y, allow_silence=True)
    sr = positive_int(sr, "sr")
    n_steps = _finite_number(n_steps, "n_steps")
    _check_long_enough(y)
    return _pitch_shift_spectrum(_stft(y), n_samples=y.size, sr=sr, n_steps=n_steps)


def add_white_noise(y: np.ndarray, *, snr_db: float, rng: np.random.Generator | int) -> np.ndarray:
    """Add Gaussian white noise at a signal-to-noise ratio measured on the clip's own power.

    Notebook: 02_augmentation.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio, not silent.
    snr_db : number [dB]
        10 log10(mean(y^2) / noise variance); 15 dB is a clearly audible hiss, 30 dB a faint one.
    rng : np.random.Generator or int >= 0
        Source of the noise; an int seeds a new generator, so the same seed gives byte-identical output.

    Returns
    -------
    y_noisy : np.ndarray [shape=(n,)], float32

    Raises
    ------
    AudioError
        ``y`` is silent: its power is zero, so no noise level gives the requested ratio.
    """
    y = valid_audio(y, allow_silence=True)
    snr_db = _finite_number(snr_db, "snr_db")
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0:
        rng = np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"rng={rng!r} must be a numpy Generator or a non-negative int seed")
    power = float(np.mean(np.square(y, dtype=np.float64)))
    if power == 0.0:
        raise AudioError("y is silent (zero power): a signal-to-noise ratio is undefined for it")
    noise_std = np.sqrt(power / 10.0 ** (snr_db / 10.0))
    noise = rng.standard_normal(y.size, dtype=np.float32)
    noise *= np.float32(noise_std)
    return y + noise


def apply_method(y: np.ndarray, *, sr: int, method: str, params: dict[str, Any]) -> np.ndarray:
    """Run one augmentation method by name with the parameters a manifest row records.

    Notebook: 02_augmentation.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
    sr : int > 0 [Hz]
    method : {"time_stretch", "pitch_shift", "white_noise"}
    params : dict
        ``{"rate": r}``, ``{"n_steps": s}`` or ``{"snr_db": d, "seed": k}`` (the manifest's ``params``
        column, JSON-decoded).

    Returns
    -------
    np.ndarray [shape=(n,)], float32
    """
    one_of(method, tuple(METHODS), "method")
    keyword = METHODS[method][0]
    if keyword not in params:
        raise ParameterError(f"params={params!r} for method {method!r} needs {keyword!r}")
    if method == "time_stretch":
        return time_stretch(y, rate=params["rate"])
    if method == "pitch_shift":
        return pitch_shift(y, sr=sr, n_steps=params["n_steps"])
    if "seed" not in params:
        raise ParameterError(f"params={params!r} for method 'white_noise' needs 'seed'")
    return add_white_noise(y, snr_db=params["snr_db"], rng=params["seed"])


def code_versions() -> dict[str, str]:
    """What decides an augmented clip's samples besides its source, method, parameters and sample rate:
    :data:`ALGORITHM_VERSION`, the decoding and resampling code and libraries
    (:func:`genrelib.audio.decoding_versions`) and NumPy (the noise generator).

    Part of every augmented clip's cache key and of the key of every training run that uses augmented
    clips, so a change in how a clip is computed is never served from an old cache. Read from package
    metadata: the calling process never imports librosa (~2 s).
    """
    from . import audio
    from .storage import library_versions

    return {"version": ALGORITHM_VERSION, **audio.decoding_versions(), **library_versions("numpy")}


def _item_rng(seed: int, track_id: str, method: str, copy: int) -> np.random.Generator:
    """A generator per item, derived from names only, so results do not depend on process scheduling."""
    label = hashlib.sha256(f"{track_id}|{method}|{copy}".encode()).hexdigest()
    return np.random.default_rng([seed, int(label[:16], 16)])


def draw_params(method: str, *, config: AugmentConfig = AugmentConfig(),
                rng: np.random.Generator | int = 0) -> dict[str, Any]:
    """Draw one augmented copy's parameters uniformly from the configured range.

    Notebook: 02_augmentation.

    Values are rounded (rate to 4 decimals, semitones to 3, dB to 2) so the manifest's JSON shows exactly
    what was applied. ``white_noise`` also gets ``seed``, the seed of its noise generator.
    """
    one_of(method, tuple(METHODS), "method")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    keyword, field_name = METHODS[method]
    low, high = getattr(config, field_name)
    digits = {"rate": 4, "n_steps": 3, "snr_db": 2}[keyword]
    params: dict[str, Any] = {keyword: round(float(rng.uniform(low, high)), digits)}
    if method == "white_noise":
        params["seed"] = int(rng.integers(0, 2**31))
    return params


def method_costs(y: np.ndarray, *, sr: int, config: AugmentConfig = AugmentConfig(),
                 repeats: int = 3) -> pd.DataFrame:
    """Time each method on one clip at both ends of its range (best of ``repeats``, after a warm-up call).

    Notebook: 02_augmentation.

    Returns
    -------
    pd.DataFrame
        ``method``, ``params``, ``milliseconds`` and ``x_realtime`` (clip duration divided by the time
        taken), with the clip's ``duration`` [s] and ``sr`` [Hz]. A slower tempo or a higher pitch costs
        more: the phase vocoder then makes more frames.
    """
    y = valid_audio(y)
    sr = positive_int(sr, "sr")
    repeats = positive_int(repeats, "repeats")
    rows = []
    for method, (keyword, field_name) in METHODS.items():
        for value in getattr(config, field_name):
            params = {keyword: value, **({"seed": 0} if method == "white_noise" else {})}
            apply_method(y[: 2 * N_FFT], sr=sr, method=method, params=params)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                apply_method(y, sr=sr, method=method, params=params)
                times.append(time.perf_counter() - start)
            rows.append({"method": method, "params": json.dumps(params), "milliseconds": 1000 * min(times),
                         "x_realtime": y.size / sr / min(times), "duration": y.size / sr, "sr": sr})
    import pandas as pd

    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- dataset stage

@dataclass(frozen=True)
class AugmentItem:
    """One augmented copy of a training track, as planned: what to compute and where to cache it.

    Notebook: 02_augmentation.

    Attributes
    ----------
    item_id : str
        ``<track_id>+<method>#<copy>``.
    track_id, genre : str
        The source track and its genre.
    method : str
        One of :data:`METHODS`.
    copy : int >= 0
        Which copy of this method (``config.copies_per_method`` of them).
    params : dict
        What :func:`apply_method` takes (:func:`draw_params`).
    path : Path
        The cached 16-bit FLAC file, named by a key over the source's SHA-256, method, parameters, sample
        rate and :func:`code_versions`.
    """

    item_id: str
    track_id: str
    genre: str
    method: str
    copy: int
    params: dict[str, Any]
    path: Path


def _resolve_config(config: AugmentConfig | Config | None) -> AugmentConfig:
    if config is None:
        return AugmentConfig()
    if isinstance(config, Config):
        config = config.augment  # checked like a bare AugmentConfig
    if not isinstance(config, AugmentConfig):
        raise ParameterError(f"config must be an AugmentConfig or Config, got {type(config).__name__}")
    for method in config.methods:
        one_of(method, tuple(METHODS), "config.methods")
    positive_int(config.copies_per_method, "config.copies_per_method")
    positive_int(config.sample_rate, "config.sample_rate")
    for _, field_name in METHODS.values():
        low, high = getattr(config, field_name)
        if not low <= high:
            raise ParameterError(f"config.{field_name}=({low}, {high}) must be (low, high) with low <= high")
    low, _ = config.stretch_rate_range
    positive_number(low, "config.stretch_rate_range[0]")
    return config


def _training_tracks(index: pd.DataFrame, split, track_ids: Iterable[str] | None) -> pd.DataFrame:
    """The index rows of the tracks to augment; any non-training track is refused."""
    from .data import Split

    if not isinstance(split, Split):
        raise ParameterError(f"split must be a genrelib.data.Split, got {type(split).__name__}")
    missing_columns = {"track_id", "genre", "path"} - set(index.columns)
    if missing_columns:
        raise ParameterError(f"index lacks column(s) {', '.join(sorted(missing_columns))} (use data.load_gtzan)")
    wanted = list(split.train) if track_ids is None else [str(t) for t in track_ids]
    _refuse_non_training(wanted, split)
    rows = index.set_index("track_id", drop=False)
    absent = [t for t in wanted if t not in rows.index]
    if absent:
        raise DataError(f"{len(absent)} training track(s) of split {split.protocol!r} are not in the index, "
                        f"e.g. {absent[0]}")
    return rows.loc[sorted(set(wanted))].reset_index(drop=True)


def _refuse_non_training(track_ids: Iterable[str], split) -> None:
    train = set(split.train)
    offending = sorted({t for t in track_ids if t not in train})
    if offending:
        sides = [f"{t} ({split.side_of(t) or 'not in the split'})" for t in offending[:5]]
        raise LeakageError(f"{len(offending)} track(s) are not training tracks of split {split.protocol!r} and "
                           f"must never be augmented into training: {', '.join(sides)}")


@dataclass(frozen=True, eq=False)
class AugmentPlan:
    """Every augmented item of a split's training tracks, from :func:`plan_augmentation`.

    Notebook: 02_augmentation.

    Attributes
    ----------
    tracks : pd.DataFrame
        The index rows of the source tracks (``track_id``, ``genre``, ``path``), sorted by track id.
    items : dict of str -> list of AugmentItem
        Per source track id, its items in config order (method, then copy).
    config : AugmentConfig
    seed : int >= 0
    protocol : str
        The split's.
    """

    tracks: pd.DataFrame
    items: dict[str, list[AugmentItem]]
    config: AugmentConfig
    seed: int
    protocol: str

    def sources_to_do(self, *, overwrite: bool = False) -> list[tuple[str, list[AugmentItem]]]:
        """``(source path, items)`` for every source with items not yet cached (all of them if ``overwrite``)."""
        paths = dict(zip(self.tracks["track_id"], self.tracks["path"]))
        jobs = []
        for track_id, items in self.items.items():
            todo = [item for item in items if overwrite or not item.path.exists()]
            if todo:
                jobs.append((str(paths[track_id]), todo))
        return jobs

    def manifest(self, errors: dict[str, str], *, include_original: bool = True) -> pd.DataFrame:
        """The table :func:`augment_split` returns, given ``{track_id: reason}`` for the sources that failed.

        ``include_original`` also lists the un-augmented clips (``method="original"``); a failed source's
        items have ``path`` None and its ``error`` on every row.
        """
        rows = []
        for track in self.tracks.itertuples(index=False):
            error = errors.get(track.track_id)
            common = {"track_id": track.track_id, "genre": track.genre, "seed": self.seed,
                      "sample_rate": self.config.sample_rate, "protocol": self.protocol, "error": error}
            if include_original:
                rows.append({**common, "item_id": track.track_id, "method": "original", "copy": 0, "params": "{}",
                             "path": str(track.path)})
            for item in self.items[track.track_id]:
                rows.append({**common, "item_id": item.item_id, "method": item.method, "copy": item.copy,
                             "params": json.dumps(item.params), "path": None if error else str(item.path)})
        columns = ["item_id", "track_id", "genre", "method", "copy", "params", "seed", "sample_rate", "path",
                   "protocol", "error"]
        import pandas as pd

        return pd.DataFrame(rows, columns=columns)


def plan_augmentation(index: pd.DataFrame, split, *, config: AugmentConfig | Config | None = None,
                      cache_dir: str | os.PathLike | None = None, seed: int = 0,
                      track_ids: Iterable[str] | None = None) -> AugmentPlan:
    """Every augmented item of the training tracks: its parameters and its content-keyed cache path.

    Notebook: 02_augmentation.

    Parameters
    ----------
    index, split, config, cache_dir, seed, track_ids
        As for :func:`augment_split`.

    Returns
    -------
    AugmentPlan
        Nothing is decoded or written except the cache folder; each source file is hashed (SHA-256) once.

    Raises
    ------
    LeakageError
        A track of ``track_ids`` is not a training track of ``split``.
    """
    from .storage import cache_dir as default_cache_dir

    config = _resolve_config(config)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ParameterError(f"seed={seed!r} must be a non-negative integer")
    tracks = _training_tracks(index, split, track_ids)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir("augment")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenrelibError(f"{root}: cannot create the augmentation cache ({exc})") from exc
    versions = code_versions()  # read once: package metadata, not per track
    items = {track.track_id: _track_items(track, config=config, seed=int(seed), root=root, versions=versions)
             for track in tracks.itertuples(index=False)}
    return AugmentPlan(tracks=tracks, items=items, config=config, seed=int(seed), protocol=split.protocol)


def _track_items(track, *, config: AugmentConfig, seed: int, root: Path, versions: dict) -> list[AugmentItem]:
    from .storage import file_digest, params_key

    source_sha256 = file_digest(track.path)
    items = []
    for method in config.methods:
        for copy in range(config.copies_per_method):
            params = draw_params(method, config=config, rng=_item_rng(seed, track.track_id, method, copy))
            key = params_key({"source_sha256": source_sha256, "method": method, "params": params,
                              "sample_rate": config.sample_rate, **versions})
            items.append(AugmentItem(item_id=f"{track.track_id}+{method}#{copy}", track_id=track.track_id,
                                     genre=track.genre, method=method, copy=copy, params=params,
                                     path=root / track.genre / f"{track.track_id}+{method}.{key}.flac"))
    return items


def _write_flac(path: Path, y: np.ndarray, *, sr: int, item: AugmentItem) -> None:
    """Write 16-bit FLAC atomically; a clip louder than full scale is scaled down to it, not clipped."""
    import soundfile as sf

    from .storage import atomic_path

    peak = max(float(y.max()), -float(y.min()))
    gain = min(1.0, _PCM16_PEAK / peak) if peak > 0 else 1.0
    # Quantise here rather than in libsndfile, whose float-to-int conversion wraps around above full scale
    # (in place: this runs three times per clip).
    scaled = y * np.float32(gain * 32768)
    np.rint(scaled, out=scaled)
    pcm = np.clip(scaled, -32768, 32767, out=scaled).astype(np.int16)
    try:
        with atomic_path(path) as tmp:
            with sf.SoundFile(tmp, "w", samplerate=sr, channels=1, format="FLAC", subtype="PCM_16") as handle:
                handle.title = item.item_id
                handle.comment = json.dumps({"method": item.method, "params": item.params, "gain": round(gain, 6)})
                handle.write(pcm)
    except (OSError, sf.LibsndfileError) as exc:
        raise GenrelibError(f"{path}: cannot write the augmented clip ({exc}); finished items stay cached") from exc


def augment_source(path: str | os.PathLike, items: list[AugmentItem], *, sr: int) -> str | None:
    """Decode one source once and write each of its items' FLAC files (atomically).

    Notebook: 02_augmentation.

    Parameters
    ----------
    path : path
        The source clip.
    items : list of AugmentItem
        Items of this source (:meth:`AugmentPlan.sources_to_do`).
    sr : int > 0 [Hz]
        Rate the source is decoded at and the files are written at (``config.sample_rate``).

    Returns
    -------
    str or None
        Why the source cannot be used (undecodable, shorter than one 2048-sample window), else None.

    Raises
    ------
    GenrelibError
        A file cannot be written (the items already written stay cached).

    Notes
    -----
    The clip's STFT is computed once and feeds both phase-vocoder methods: the same numbers as
    :func:`time_stretch` and :func:`pitch_shift` called one by one.
    """
    from . import audio

    try:
        y = audio.load(path, sr=sr)
        _check_long_enough(y)
    except GenrelibError as exc:
        return str(exc)
    spectrum = _stft(y) if any(i.method != "white_noise" for i in items) else None
    for item in items:
        if item.method == "time_stretch":
            out = _time_stretch_spectrum(spectrum, n_samples=y.size, rate=item.params["rate"],
                                         pad_mode=PAD_MODES[0])
        elif item.method == "pitch_shift":
            out = _pitch_shift_spectrum(spectrum, n_samples=y.size, sr=sr, n_steps=item.params["n_steps"])
        else:
            out = add_white_noise(y, snr_db=item.params["snr_db"], rng=item.params["seed"])
        _write_flac(item.path, out, sr=sr, item=item)
    return None


def _warm_start_context():
    """A fork-server context whose server has already imported librosa's DSP modules.

    Forking from a clean server, not from the caller, is safe when the caller runs threads (Jupyter,
    TensorFlow); importing librosa once in the server saves every worker ~2 s of start-up.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["genrelib._forkserver_lifeline", "genrelib.augment", "genrelib.audio",
                                    "librosa.effects", "soundfile"])
    return context


def die_with_parent() -> None:
    """On Linux, ask the kernel to kill this process when its parent dies: the workers' initializer (their parent
    is the fork server) and the fork server's first preload (its parent is the process that started it), so a
    ``kill -9`` of ``genrelib augment`` leaves no worker behind."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the call above
        os._exit(1)


def _run_jobs(jobs: list[tuple[str, list[AugmentItem]]], *, sr: int,
              n_jobs: int) -> Iterator[tuple[tuple, str | None]]:
    """Yield ``(job, augment_source(*job, sr=sr))`` as the jobs finish, in ``n_jobs`` worker processes
    (``n_jobs=1``: here, in order)."""
    if n_jobs == 1 or len(jobs) <= 1:
        for job in jobs:
            yield job, augment_source(*job, sr=sr)
        return
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=_warm_start_context(),
                             initializer=die_with_parent) as pool:
        futures = {pool.submit(augment_source, *job, sr=sr): job for job in jobs}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            pool.shutdown(cancel_futures=True)  # an interruption stops the jobs not yet started


def augment_split(
    index: pd.DataFrame,
    split,
    *,
    config: AugmentConfig | Config | None = None,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    track_ids: Iterable[str] | None = None,
    include_original: bool = True,
    n_jobs: int = 2,
    progress: bool = True,
    overwrite: bool = False,
    on_error: str = "raise",
) -> pd.DataFrame:
    """Augment the training tracks of a split into cached 16 kHz FLAC files; return their manifest.

    Notebook: 02_augmentation.

    Parameters
    ----------
    index : pd.DataFrame
        Track index from :func:`genrelib.data.load_gtzan` (``track_id``, ``genre``, ``path``).
    split : genrelib.data.Split
        Only ``split.train`` is augmented.
    config : AugmentConfig or Config, optional
        Methods, copies per method, parameter ranges and sample rate (default ``AugmentConfig()``:
        3 methods x 1 copy at 16 kHz).
    cache_dir : path, optional
        Cache root, default ``genrelib.storage.cache_dir("augment")``; files go to
        ``<root>/<genre>/<track_id>+<method>.<key>.flac``.
    seed : int >= 0
        With the track id, method and copy number it determines each copy's parameters.
    track_ids : iterable of str, optional
        Augment only these tracks (default: all of ``split.train``). A validation or test track, or one
        outside the split, raises :class:`LeakageError`.
    include_original : bool
        Also list the un-augmented training clips (``method="original"``, ``item_id=track_id``, ``path`` =
        the source file), so the manifest is the complete training table for ``embed.embed_dataset``.
    n_jobs : int > 0
        Worker processes (one clip per task); 1 runs in this process.
    progress : bool
        Show a tqdm bar over source clips.
    overwrite : bool
        Recompute items already cached.
    on_error : {"raise", "report"}
        A source that cannot be decoded: ``"raise"`` an :class:`AudioError` listing every such file after
        the pass (all other items are cached), or ``"report"`` it in the ``error`` column.

    Returns
    -------
    manifest : pd.DataFrame
        One row per training item, sorted: ``item_id``, ``track_id`` (the source), ``genre``, ``method``,
        ``copy``, ``params`` (JSON, e.g. ``{"rate": 1.1302}``; :func:`apply_method` takes it), ``seed``,
        ``sample_rate`` [Hz], ``path``, ``protocol`` (the split's), ``error``.

    Notes
    -----
    Each item's file is keyed by the source file's SHA-256, the method, its parameters (including the
    noise seed), the sample rate and :func:`code_versions` (algorithm, decoder, resampler and library
    versions), and written atomically. A
    re-run reuses what exists without decoding, and an interrupted run resumes; the output does not depend
    on ``n_jobs`` or on the order in which workers finish, so a resumed cache is byte-identical to an
    uninterrupted one. Each source is decoded once at ``config.sample_rate`` and its STFT feeds both
    phase-vocoder methods. Workers send back only a status and each holds one clip at a time, so memory
    does not grow with the number of clips. The steps are public (:func:`plan_augmentation`,
    :func:`augment_source`, :meth:`AugmentPlan.manifest`) for other pools, such as
    :func:`genrelib.scale.augment_catalogue` on Ray.
    """
    from tqdm.auto import tqdm

    from .progress import leave

    n_jobs = positive_int(n_jobs, "n_jobs")
    one_of(on_error, ("raise", "report"), "on_error")
    plan = plan_augmentation(index, split, config=config, cache_dir=cache_dir, seed=seed, track_ids=track_ids)
    jobs = plan.sources_to_do(overwrite=overwrite)
    errors: dict[str, str] = {}
    with tqdm(total=len(plan.items), initial=len(plan.items) - len(jobs), disable=not progress, unit="clip",
              desc=f"augment [{split.protocol}]", leave=leave()) as bar:
        for (_, items), error in _run_jobs(jobs, sr=plan.config.sample_rate, n_jobs=n_jobs):
            if error:
                errors[items[0].track_id] = error
            bar.update()
    if errors and on_error == "raise":
        raise AudioError(f"{len(errors)} of {len(plan.items)} training clips could not be augmented (the others "
                         f"are cached; a re-run resumes):\n  " + "\n  ".join(errors.values()))
    manifest = plan.manifest(errors, include_original=include_original)
    assert_no_leakage(split, manifest)
    return manifest


def assert_no_leakage(split, table: pd.DataFrame) -> None:
    """Raise :class:`LeakageError` unless every item of ``table`` derives from a training track of ``split``.

    Notebook: 02_augmentation (later stages call it before training).

    Parameters
    ----------
    split : genrelib.data.Split
    table : pd.DataFrame
        Any training table with a ``track_id`` column holding each item's *source* track: an
        augmentation manifest, an embedding table.

    Raises
    ------
    LeakageError
        Names the offending items and the side (valid, test, or none) of their source track. A track
        outside the split counts too: the fault filter excludes duplicates of test tracks.
    """
    from .data import Split

    if not isinstance(split, Split):
        raise ParameterError(f"split must be a genrelib.data.Split, got {type(split).__name__}")
    if "track_id" not in getattr(table, "columns", ()):
        raise ParameterError("table needs a 'track_id' column naming each item's source track")
    train = set(split.train)
    bad = table[~table["track_id"].astype(str).isin(train)]
    if len(bad):
        ids = bad["item_id"] if "item_id" in bad.columns else bad["track_id"]
        examples = [f"{item} <- {track} ({split.side_of(str(track)) or 'not in the split'})"
                    for item, track in zip(ids.head(5), bad["track_id"].head(5))]
        raise LeakageError(f"{len(bad)} of {len(table)} training item(s) derive from tracks that are not "
                           f"training tracks of split {split.protocol!r}: {'; '.join(examples)}")


def count_items(manifest: pd.DataFrame) -> pd.DataFrame:
    """Items per genre and method: columns ``genre``, ``method``, ``count`` (Fig 2's numbers).

    Notebook: 02_augmentation.
    """
    missing = {"genre", "method"} - set(manifest.columns)
    if missing:
        raise ParameterError(f"manifest lacks column(s) {', '.join(sorted(missing))}")
    return manifest.groupby(["genre", "method"], sort=True).size().rename("count").reset_index()
