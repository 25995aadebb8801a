"""Any folder-per-label collection of music, not only GTZAN: index, groups and excerpts of long tracks.

Notebook: 01_data_exploration. CLI: ``genrelib run --data DIR`` (any folder :func:`load_data` reads).

A collection is either a folder ``<root>/<label>/<any name>.<audio ext>`` (one level of subfolders below
a label allowed, e.g. albums) or a CSV manifest with columns ``path``, ``label`` and optionally ``group``
(artist, album: whatever must never be on two sides of a split). Its index has the columns of
:func:`genrelib.data.load_gtzan` (the label is in ``genre``, the column every stage reads) plus ``group``
and ``source``; every split of such an index is group-aware (:func:`genrelib.data.split_groups`).

Tracks much longer than a GTZAN clip are cut into consecutive excerpts (cached as FLAC), all in the group
of their track, so no excerpt of a test track ever reaches training.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .audio import AUDIO_EXTENSIONS
from .checks import one_of, positive_number
from .config import GENRES
from .errors import AudioError, DataError, GenrelibWarning

__all__ = ["load_collection", "load_data", "is_gtzan", "gtzan_only", "labels_of", "EXCERPT_SECONDS", "MIN_EXCERPT_SECONDS"]

#: Length of the excerpts a long track is cut into [s]: a GTZAN clip's length, what the method was made for.
EXCERPT_SECONDS = 30.0
#: A remainder at least this long becomes a last, shorter excerpt [s]; a shorter one is dropped. A track
#: shorter than ``EXCERPT_SECONDS + MIN_EXCERPT_SECONDS`` is used whole (the network crops or pads it).
MIN_EXCERPT_SECONDS = 10.0
#: Files beside the music that a collection may hold: not audio, never an error.
_SIDECARS = {".txt", ".md", ".csv", ".json", ".jpg", ".jpeg", ".png", ".gif", ".pdf", ".m3u", ".m3u8", ".nfo",
             ".cue", ".log", ".mf", ".db", ".ini"}


def labels_of(genres, labels=None) -> tuple[str, ...]:
    """The label set of some tracks: ``labels`` when given, GTZAN's ten (in :data:`GENRES` order) when every
    label is a GTZAN genre, else the labels present, sorted.

    Parameters
    ----------
    genres : iterable of str
        The label of each track (an index's ``genre`` column).
    labels : sequence of str, optional
    """
    if labels:
        return tuple(labels)
    present = set(genres)
    return GENRES if present <= set(GENRES) else tuple(sorted(present))


def is_gtzan(root: str | os.PathLike) -> bool:
    """Whether ``root`` has a GTZAN layout (:func:`genrelib.data.load_gtzan`): every label folder a GTZAN genre.
    A CSV manifest, or a folder with any other label, is a collection (:func:`load_collection`)."""
    from .data import _canonical_genre, _genre_folder_root

    root = Path(root)
    if not root.is_dir():
        return False
    try:
        base = _genre_folder_root(root)
    except DataError:
        return False
    folders = [p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return {_canonical_genre(p.name) for p in folders} <= set(GENRES)


def gtzan_only(root: str | os.PathLike, *, reason: str) -> bool:
    """Whether a step that exists only for GTZAN runs on ``root``; if not, say so in one printed line.

    Notebooks 01-07 guard their GTZAN-only cells (checksums, Sturm's artist index, the fault-filtered
    lists, the paper's numbers) with it, so that they run on any collection :func:`load_data` reads.

    Parameters
    ----------
    root : path
        The data folder (or manifest) in use.
    reason : str
        Why the step needs GTZAN, printed as ``skipped on this collection: <reason>`` when ``root`` is not
        GTZAN (:func:`is_gtzan`).

    Returns
    -------
    bool
        True for GTZAN (nothing printed), else False.
    """
    if is_gtzan(root):
        return True
    print(f"skipped on this collection: {reason}")
    return False


def load_data(root: str | os.PathLike | None = None, *, labels=None, on_error: str = "raise") -> pd.DataFrame:
    """:func:`genrelib.data.load_gtzan` for a GTZAN folder, else :func:`load_collection`.

    ``root`` defaults to :func:`genrelib.data.resolve_root`, as for :func:`~genrelib.data.load_gtzan`.
    ``index.attrs["labels"]`` holds the label set in output order either way (GTZAN: :data:`GENRES`).
    """
    from .data import load_gtzan, resolve_root

    root = resolve_root(root)[0]  # an explicit folder is returned as given
    if is_gtzan(root) and not labels:
        index = load_gtzan(root, on_error=on_error)
        index.attrs["labels"] = GENRES
        return index
    return load_collection(root, labels=labels, on_error=on_error)


def load_collection(root: str | os.PathLike, *, labels=None, on_error: str = "raise",
                    excerpt_seconds: float = EXCERPT_SECONDS) -> pd.DataFrame:
    """Index a folder-per-label collection, or a CSV manifest, cutting long tracks into excerpts.

    Notebook: 01_data_exploration.

    Parameters
    ----------
    root : path
        A folder ``<root>/<label>/<file>`` or ``<root>/<label>/<subfolder>/<file>`` (any label and file
        names; hidden files and sidecars such as ``cover.jpg`` are ignored), or a ``.csv`` manifest with
        ``path`` (relative to the manifest's folder, or absolute), ``label`` and optional ``group``.
    labels : sequence of str, optional
        Use only these labels, in this order (the network's outputs); default every label found, sorted.
    on_error : {"raise", "skip"}
        A file that cannot be read: raise :class:`DataError` naming it, or leave it out and name it in one
        :class:`GenrelibWarning` and in ``attrs["skipped"]``.
    excerpt_seconds : float > 0 [s]
        Excerpt length for long tracks (see :data:`MIN_EXCERPT_SECONDS`).

    Returns
    -------
    pd.DataFrame
        One row per clip (a whole track or one excerpt), sorted by ``track_id``: ``track_id``, ``genre``
        (the label), ``path`` (the file, or the cached excerpt), ``samplerate`` [Hz], ``channels``,
        ``duration`` [s], ``artist`` (the manifest's group, else ``None``), ``title`` (the file name without
        extension), ``group`` (the manifest's group, else the track: excerpts share their track's),
        ``source`` (the original file), ``start`` [s] (of the excerpt in its source; 0 for a whole track).
        ``attrs``: ``labels`` (the label set, in output order), ``skipped`` (as :func:`load_gtzan`).

    Raises
    ------
    DataError
        No such folder, a label folder without audio, fewer than two labels, a label of ``labels`` absent,
        a duplicate track, a manifest without ``path`` / ``label``, an unreadable file (``on_error="raise"``).
    """
    one_of(on_error, ("raise", "skip"), "on_error")
    excerpt_seconds = positive_number(excerpt_seconds, "excerpt_seconds")
    root = Path(root)
    entries = _manifest_entries(root) if root.suffix.lower() == ".csv" else _folder_entries(root)
    entries = _chosen_labels(entries, labels, root)
    rows, skipped = [], []
    for entry in entries:
        try:
            rows += _clips(entry, excerpt_seconds=excerpt_seconds)
        except AudioError as exc:
            if on_error == "raise":
                raise DataError(f"{exc} - pass on_error='skip' (CLI: --on-error skip) to leave this track "
                                f"out") from None
            skipped.append({"track_id": entry["track_id"], "path": str(entry["path"]), "problem": "unreadable"})
    if not rows:
        raise DataError(f"{root}: no readable track")
    index = pd.DataFrame(rows).sort_values("track_id", ignore_index=True)
    index.attrs["labels"] = labels_of(index["genre"], labels)
    index.attrs["skipped"] = skipped
    if skipped:
        from .data import skipped_tracks

        warnings.warn(f"{root}: {len(rows)} clips; skipped: {skipped_tracks(index)}", GenrelibWarning,
                      stacklevel=2)
    return index


def _check_label(label: str, where) -> str:
    label = str(label).strip()
    # A label names a folder of cached augmented audio and a column p_<label>: no separators, not empty.
    if not label or label.startswith(".") or any(c in label for c in "/\\\n"):
        raise DataError(f"{where}: label {label!r} cannot be used (empty, hidden or holding a path separator)")
    return label


def _track_id(label: str, parts) -> str:
    """``<label>.<subfolder>.<file name without extension>``: unique within a collection, readable in tables."""
    return ".".join([label, *parts])


def _folder_entries(root: Path) -> list[dict]:
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (a collection is a folder of label folders, or a .csv manifest)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root}: no GTZAN layout found and no label folders (expected genres/<genre>/ for GTZAN, "
                        f"or <label>/<file>.<audio extension> folders for your own collection)")
    entries, ignored = [], []
    for folder in folders:
        label = _check_label(folder.name, folder)
        found = []
        for path in sorted(folder.iterdir()):
            found += _audio_below(path, label, root, ignored, depth=0)
        if not found:
            raise DataError(f"{folder}: label folder {label!r} holds no audio files "
                            f"({', '.join(AUDIO_EXTENSIONS)})")
        entries += found
    if ignored:
        shown = ", ".join(ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
        warnings.warn(f"{root}: ignored {len(ignored)} file(s) that are not audio: {shown}", GenrelibWarning,
                      stacklevel=3)
    return entries


def _audio_below(path: Path, label: str, root: Path, ignored: list, *, depth: int) -> list[dict]:
    """The audio files at ``path`` (a file, or a subfolder one level below the label folder)."""
    if path.name.startswith("."):
        return []
    if path.is_dir():
        if depth:
            raise DataError(f"{path}: folders nest too deep (expected <label>/<file> or <label>/<subfolder>/<file>)")
        return [e for child in sorted(path.iterdir()) for e in _audio_below(child, label, root, ignored, depth=1)]
    suffix = path.suffix.lower()
    if suffix not in AUDIO_EXTENSIONS:
        if suffix not in _SIDECARS:
            ignored.append(str(path.relative_to(root)))
        return []
    parts = path.relative_to(root).with_suffix("").parts[1:]
    return [{"track_id": _track_id(label, parts), "genre": label, "path": path, "group": None,
             "title": path.stem}]


def _manifest_entries(manifest: Path) -> list[dict]:
    try:
        table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{manifest}: cannot read the manifest ({exc})") from None
    missing = {"path", "label"} - set(table.columns)
    if missing:
        raise DataError(f"{manifest}: manifest lacks column(s) {', '.join(sorted(missing))} "
                        f"(expected path,label and optionally group)")
    entries = []
    for line, row in enumerate(table.itertuples(index=False), start=2):
        label = _check_label(row.label, f"{manifest}:{line}")
        path = Path(row.path) if Path(row.path).is_absolute() else manifest.parent / row.path
        group = str(getattr(row, "group", "") or "").strip() or None
        relative = Path(row.path).with_suffix("").parts if not Path(row.path).is_absolute() else (path.stem,)
        entries.append({"track_id": _track_id(label, [p for p in relative if p != label]), "genre": label,
                        "path": path, "group": group, "title": path.stem})
    if not entries:
        raise DataError(f"{manifest}: the manifest lists no tracks")
    return entries


def _chosen_labels(entries: list[dict], labels, root: Path) -> list[dict]:
    present = sorted({e["genre"] for e in entries})
    if labels:
        labels = [str(label) for label in labels]
        absent = [label for label in labels if label not in present]
        if absent:
            raise DataError(f"{root}: label(s) {', '.join(absent)} not found; it has {', '.join(present)}")
        entries = [e for e in entries if e["genre"] in set(labels)]
    if len({e["genre"] for e in entries}) < 2:
        raise DataError(f"{root}: {len(set(e['genre'] for e in entries))} label(s) ({', '.join(present)}): a "
                        f"classifier needs at least two")
    ids = pd.Series([e["track_id"] for e in entries])
    repeated = sorted(set(ids[ids.duplicated()]))
    if repeated:
        paths = [str(e["path"]) for e in entries if e["track_id"] == repeated[0]]
        raise DataError(f"{root}: track {repeated[0]!r} listed more than once ({', '.join(paths)})")
    return entries


def _clips(entry: dict, *, excerpt_seconds: float) -> list[dict]:
    """The index rows of one track: the track itself, or its excerpts when it is long."""
    from . import audio

    meta = audio.info(entry["path"])  # AudioError names the file
    if meta["frames"] == 0:
        raise AudioError(f"{entry['path']}: holds no audio samples")
    base = {"track_id": entry["track_id"], "genre": entry["genre"], "path": str(entry["path"]),
            "samplerate": meta["samplerate"], "channels": meta["channels"], "duration": meta["duration"],
            "artist": entry["group"], "title": entry["title"], "group": entry["group"] or entry["track_id"],
            "source": str(entry["path"]), "start": 0.0}
    starts = _excerpt_starts(meta["duration"], excerpt_seconds)
    if len(starts) < 2:
        return [base]
    paths = _write_excerpts(Path(entry["path"]), starts, excerpt_seconds)
    return [{**base, "track_id": f"{entry['track_id']}@{k:02d}", "path": str(path), "start": float(start),
             "duration": float(min(excerpt_seconds, meta["duration"] - start))}
            for k, (start, path) in enumerate(zip(starts, paths))]


def _excerpt_starts(duration: float, excerpt_seconds: float) -> list[float]:
    """Start times [s] of consecutive excerpts; a remainder under :data:`MIN_EXCERPT_SECONDS` is dropped."""
    starts = list(np.arange(0.0, duration, excerpt_seconds))
    if starts and duration - starts[-1] < min(MIN_EXCERPT_SECONDS, excerpt_seconds):
        starts.pop()
    return [float(s) for s in starts] or [0.0]


def _write_excerpts(source: Path, starts: list[float], excerpt_seconds: float) -> list[Path]:
    """Cut ``source`` at ``starts`` into cached FLAC files (native rate, mono); reused when present.

    Keyed by the source's SHA-256 and the excerpt length, so an edited file is cut again.
    """
    import soundfile as sf

    from . import audio
    from .storage import atomic_path, cache_dir, file_digest, params_key

    folder = cache_dir("excerpts", params_key({"source": file_digest(source), "seconds": excerpt_seconds,
                                               "decoding": audio.decoding_versions()}))
    paths = [folder / f"{k:02d}.flac" for k in range(len(starts))]
    if all(p.exists() for p in paths):
        return paths
    samplerate = audio.info(source)["samplerate"]
    y = audio.load(source, sr=None)
    length = int(round(excerpt_seconds * samplerate))
    for start, path in zip(starts, paths):
        at = int(round(start * samplerate))
        with atomic_path(path) as tmp:
            sf.write(tmp, y[at:at + length], samplerate, subtype="PCM_24", format="FLAC")
    return paths
