"""GTZAN as an index with checksums: find, load, validate, download, split, synthesise.

Notebook: 01_data_exploration.

GTZAN (Tzanetakis & Cook, 2002) holds 1000 clips of 30 s, 100 per genre. The package ships the per-file
MD5 of all 1000 original WAV files (from mirdata's index), the SHA-256 of the 100-clip mini subset, and the
fault-filtered, artist-disjoint split of Kereliuk, Sturm & Larsen (2015). Every split here is by *track*:
augmented copies and patches of a track always stay on that track's side.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import warnings
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .audio import AUDIO_EXTENSIONS
from .checks import one_of, positive_int, positive_number
from .config import GENRES
from .errors import AudioError, ChecksumError, DataError, DownloadError, GenrelibWarning, LeakageError, ParameterError

__all__ = [
    "GENRES",
    "REMOTES",
    "BIBTEX",
    "LICENSE_INFO",
    "Remote",
    "Split",
    "gtzan_index",
    "resolve_root",
    "download_verified",
    "load_gtzan",
    "skipped_tracks",
    "example_tracks",
    "validate",
    "download",
    "VERIFIED_RECORD",
    "split_random",
    "split_fault_filtered",
    "kfold",
    "split_by_artist",
    "split_groups",
    "load_collection",
    "load_data",
    "is_gtzan",
    "gtzan_only",
    "artists_per_genre",
    "single_artist_genres",
    "fault_filtered_exclusions",
    "artist_index",
    "synthetic_gtzan",
]

BIBTEX = """@article{tzanetakis2002gtzan,
  title={Musical genre classification of audio signals},
  author={Tzanetakis, George and Cook, Perry},
  journal={IEEE Transactions on Speech and Audio Processing},
  volume={10}, number={5}, pages={293--302}, year={2002}
}
@article{kereliuk2015deep,
  title={Deep learning and music adversaries},
  author={Kereliuk, Corey and Sturm, Bob L. and Larsen, Jan},
  journal={IEEE Transactions on Multimedia},
  volume={17}, number={11}, pages={2059--2071}, year={2015}
}"""

LICENSE_INFO = ("GTZAN carries no explicit licence; it is distributed for research. The checksum index comes "
                "from mirdata (BSD-3-Clause); the fault-filtered split from Kereliuk et al. (2015).")

_MINI_COMMIT = "a61439e86c13037011fde8e0f0743ec55c50bce3"


@dataclass(frozen=True)
class Remote:
    """A downloadable archive: mirrors tried in order, a checksum (``None``: verified per file instead)."""

    filename: str
    urls: tuple[str, ...]
    md5: str | None
    description: str


REMOTES = {
    "full": Remote(
        filename="genres.tar.gz",
        urls=(
            "http://opihi.cs.uvic.ca/sound/genres.tar.gz",
            "https://huggingface.co/datasets/marsyas/gtzan/resolve/main/data/genres.tar.gz",
        ),
        md5="5b3d6dddb579ab49814ab86dba69e7c7",
        description="the original GTZAN archive, 1000 WAV clips (1.2 GB)",
    ),
    "mini": Remote(
        filename=f"gtzan_mini-{_MINI_COMMIT[:8]}.zip",
        urls=(f"https://github.com/TempoBeatDownbeat/gtzan_mini/archive/{_MINI_COMMIT}.zip",),
        md5=None,  # a code-host archive is re-made on demand; each WAV's SHA-256 is checked instead
        description="100 GTZAN clips (ids 00000-00009 of each genre), TempoBeatDownbeat/gtzan_mini",
    ),
}

_TRACK_RE = re.compile(r"^(?P<genre>[a-z-]+)\.(?P<number>\d{5})$")
_GENRE_ALIASES = {"hip-hop": "hiphop", "hip_hop": "hiphop"}
_IGNORED_NAMES = {"readme.md", "readme.txt", "license", "license.txt", "bextract_single.mf"}


def _resource(name: str):
    return resources.files("genrelib") / "resources" / name


def gtzan_index() -> pd.DataFrame:
    """The shipped index of the full GTZAN: ``track_id``, ``genre``, ``path`` (relative), ``md5`` (WAV)."""
    with _resource("gtzan_genre_md5.csv").open() as handle:
        return pd.read_csv(handle, dtype=str)


#: SHA-256 of the shipped copy of Sturm's index (byte-identical to the published file; see :func:`artist_index`).
ARTIST_INDEX_SHA256 = "7bc7140f082cccd72046ec7c6e9b9c211a7491f6e7ede38fddafc63058559833"


def artist_index() -> pd.DataFrame:
    """Artist and title of every GTZAN track, as identified by Sturm (2012, corrected up to 2014).

    Notebook: 01_data_exploration.

    Returns
    -------
    pd.DataFrame
        1000 rows, sorted by ``track_id``: ``track_id``, ``artist``, ``title`` (``None`` where Sturm's index
        names none: 81 tracks lack an artist).

    Notes
    -----
    B. L. Sturm, "An Analysis of the GTZAN Music Genre Dataset", Proc. ACM MIRUM, 2012: cite it when the
    artists are used. The shipped file is the published ``GTZANindex.txt``, byte for byte.
    """
    rows = []
    for line in _resource("sturm_GTZANindex.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or ":::" not in line:
            continue
        name, artist, title = (part.strip() for part in line.split(":::"))
        rows.append({"track_id": Path(name).stem, "artist": artist or None, "title": title or None})
    return _none_where_unknown(pd.DataFrame(rows).sort_values("track_id", ignore_index=True))


def _none_where_unknown(frame: pd.DataFrame) -> pd.DataFrame:
    """``artist`` and ``title`` as Python objects with ``None`` (not NaN) where Sturm names none."""
    columns = ["artist", "title"]
    frame = frame.astype({c: object for c in columns})
    frame[columns] = frame[columns].where(frame[columns].notna(), None)
    return frame


def _sha256_table(name: str) -> dict[str, str]:
    """track_id -> sha256 from a ``sha256sum``-style file shipped as package data."""
    table = {}
    for line in _resource(name).read_text().splitlines():
        if line.strip():
            digest, relpath = line.split(maxsplit=1)
            table[Path(relpath.strip()).stem] = digest
    return table


# ----------------------------------------------------------------------------------------------- layout

def _genre_folder_root(root: Path) -> Path:
    """The folder that directly holds the genre folders, for each layout people actually have."""
    for candidate in (root / "genres", root / "Data" / "genres_original", root / "genres_original", root):
        if candidate.is_dir() and any(_canonical_genre(p.name) in GENRES for p in candidate.iterdir() if p.is_dir()):
            return candidate
    raise DataError(f"{root}: no GTZAN layout found (expected genres/<genre>/, Data/genres_original/<genre>/ "
                    f"or <genre>/ folders inside it)")


def _canonical_genre(name: str) -> str:
    return _GENRE_ALIASES.get(name.lower(), name.lower())


def _scan(root: Path) -> list[dict]:
    base = _genre_folder_root(root)
    rows, present = [], set()
    for folder in sorted(p for p in base.iterdir() if not p.name.startswith(".")):
        if folder.is_file():
            if folder.name.lower() in _IGNORED_NAMES or folder.suffix.lower() in {".md", ".txt", ".mf", ".csv"}:
                continue
            raise DataError(f"{folder}: unexpected file beside the genre folders")
        genre = _canonical_genre(folder.name)
        if genre not in GENRES:
            raise DataError(f"{folder}: unexpected folder, not a GTZAN genre ({', '.join(GENRES)})")
        present.add(genre)
        files = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]
        if not files:
            raise DataError(f"{folder}: genre folder is empty")
        for path in files:
            rows.append(_track_row(path, genre))
    missing = [g for g in GENRES if g not in present]
    if missing:
        raise DataError(f"{base}: genre folder(s) missing: {', '.join(missing)}")
    ids = pd.Series([r["track_id"] for r in rows])
    duplicated = sorted(set(ids[ids.duplicated()]))
    if duplicated:
        raise DataError(f"{base}: track(s) present in several files: {', '.join(duplicated[:5])}")
    return rows


def _track_row(path: Path, genre: str) -> dict:
    match = _TRACK_RE.match(path.stem)
    if path.is_dir() or not match or _canonical_genre(match["genre"]) != genre:
        raise DataError(f"{path}: stray entry in genre folder {genre!r} (expected {genre}.000NN.<ext>)")
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise DataError(f"{path}: unknown audio extension {path.suffix!r}")
    return {"track_id": f"{genre}.{match['number']}", "genre": genre, "path": str(path)}


# ------------------------------------------------------------------------------------------- loading

def resolve_root(root: str | os.PathLike | None = None, *, allow_download: bool = False,
                 allow_synthetic: bool = False) -> tuple[Path, str]:
    """Find the data, in order: ``root`` -> ``$GENRELIB_DATA`` -> ``./data/gtzan`` -> (if allowed) a download
    of the mini set into ``./data/gtzan_mini`` -> (if allowed) a synthetic set, with a loud warning.

    Returns
    -------
    (path, source) : (Path, str)
        ``source`` is one of ``"argument"``, ``"GENRELIB_DATA"``, ``"./data/gtzan"``, ``"download"``,
        ``"synthetic"``: notebooks print it so every result says what it was computed on.
    """
    if root is not None:
        return Path(root), "argument"
    if os.environ.get("GENRELIB_DATA"):
        return Path(os.environ["GENRELIB_DATA"]), "GENRELIB_DATA"
    local = Path("data/gtzan")
    if local.is_dir():
        return local.resolve(), "./data/gtzan"
    if allow_download:
        try:
            return download("mini", Path("data/gtzan_mini")), "download"
        except Exception as exc:  # noqa: BLE001 - any network failure leads to the next fallback
            warnings.warn(f"could not download the GTZAN mini set ({exc})", GenrelibWarning, stacklevel=2)
    if allow_synthetic:
        from .storage import cache_dir

        warnings.warn("NO GTZAN DATA FOUND: using a SYNTHETIC stand-in. Results below are NOT music and mean "
                      "nothing about genre classification. Set GENRELIB_DATA to a GTZAN folder.",
                      GenrelibWarning, stacklevel=2)
        return synthetic_gtzan(cache_dir("synthetic_gtzan"), per_genre=10, seconds=30.0, seed=0), "synthetic"
    raise DataError("no GTZAN data found: pass a folder, set GENRELIB_DATA, put it at ./data/gtzan, or run "
                    "`genrelib data download mini`")


def load_gtzan(root: str | os.PathLike | None = None, *, on_error: str = "raise") -> pd.DataFrame:
    """Index the GTZAN clips under ``root``.

    Notebook: 01_data_exploration.

    Parameters
    ----------
    root : path, optional
        A folder holding ``genres/<genre>/<genre>.000NN.<ext>`` (original archive, mini set),
        ``Data/genres_original/...`` (a widespread re-upload) or the genre folders themselves; ``hip-hop``
        is read as ``hiphop``. Default: :func:`resolve_root`.
    on_error : {"raise", "skip"}
        What to do with a file whose header cannot be read (``jazz.00054`` of the Kaggle copy):
        raise :class:`DataError` naming it, or leave it out with one :class:`GenrelibWarning` naming
        every skipped track. The CLI's ``--on-error`` and ``Config.data.on_error`` set it.

    Returns
    -------
    pd.DataFrame
        One row per track, sorted by ``track_id``: ``track_id``, ``genre``, ``path``, ``samplerate`` [Hz],
        ``channels``, ``duration`` [s] (from the file header; cheap), ``artist`` and ``title`` (Sturm's
        index, :func:`artist_index`; ``None`` where unknown). ``attrs["skipped"]`` lists the
        tracks left out (``track_id``, ``path``, ``problem``; see :func:`skipped_tracks`).
    """
    from . import audio

    one_of(on_error, ("raise", "skip"), "on_error")
    root, _ = resolve_root(root)
    if not Path(root).is_dir():
        raise DataError(f"{root}: no such folder")
    rows, skipped = [], []
    for row in _scan(Path(root)):
        try:
            meta = audio.info(row["path"])
        except AudioError as exc:
            if on_error == "raise":
                raise DataError(f"{exc} - pass on_error='skip' (CLI: --on-error skip) to leave this track "
                                f"out") from None
            skipped.append({"track_id": row["track_id"], "path": row["path"], "problem": "unreadable"})
            continue
        rows.append({**row, "samplerate": meta["samplerate"], "channels": meta["channels"],
                     "duration": meta["duration"]})
    if not rows:
        raise DataError(f"{root}: no readable track")
    index = pd.DataFrame(rows).merge(artist_index(), on="track_id", how="left")
    index = _none_where_unknown(index.sort_values("track_id", ignore_index=True))
    index.attrs["skipped"] = skipped
    if skipped:
        warnings.warn(f"{root}: {len(rows)} tracks; skipped: {skipped_tracks(index)}", GenrelibWarning,
                      stacklevel=2)
    return index


def skipped_tracks(index: pd.DataFrame) -> str:
    """The tracks :func:`load_gtzan` left out, as results name them: ``"jazz.00054 (unreadable)"``
    (empty when none)."""
    return ", ".join(f"{item['track_id']} ({item['problem']})" for item in index.attrs.get("skipped", []))


def example_tracks(index: pd.DataFrame, *, per_genre: int = 1) -> pd.DataFrame:
    """The first ``per_genre`` tracks of each genre, in :data:`GENRES` order (for listening and Fig 1); for a
    collection, of each label in its label order (``index.attrs["labels"]``, else sorted)."""
    from .collection import labels_of

    per_genre = positive_int(per_genre, "per_genre")
    order = labels_of(index["genre"], index.attrs.get("labels"))
    ordered = index.assign(_order=index["genre"].map(order.index)).sort_values(["_order", "track_id"])
    return ordered.groupby("genre", sort=False).head(per_genre).drop(columns="_order").reset_index(drop=True)


# ------------------------------------------------------------------------------------------ validate

def validate(root: str | os.PathLike | None = None, *, expected: str = "auto", decode: bool = True,
             duration_range: tuple[float, float] = (29.0, 31.0), progress: bool = False) -> pd.DataFrame:
    """Check every track: present, checksum, decodable, duration.

    Notebook: 01_data_exploration.

    Parameters
    ----------
    root : path, optional
        As for :func:`load_gtzan`.
    expected : {"auto", "full", "mini", "found"}
        Which tracks should exist: all 1000, the mini set's 100 (ids 00000-00009 of each genre, except
        jazz: 00000-00002, 00004-00008, 00011, 00012), only those found; ``"auto"`` picks ``"mini"`` when
        every found id belongs to the mini set, else ``"full"``.
    decode : bool
        Decode each file completely (finds corruption a header read misses).
    duration_range : (float, float) [seconds]
        Durations outside it are reported (GTZAN clips last 29.9-30.7 s).

    Returns
    -------
    pd.DataFrame
        One row per expected track: ``track_id``, ``genre``, ``path``, ``exists``, ``checksum``
        (``"ok"``: the published per-file sum; ``"archive"``: verified by archive MD5, i.e. unchanged since
        a verified :func:`download` of the full archive unpacked it - the original ``.au`` files have no
        published per-file sum; ``"mismatch"``; ``"unknown"``: nothing to check against, not an error, and
        a :class:`GenrelibWarning` says so when no file at all could be verified),
        ``decodable``, ``duration`` [s], ``ok`` and ``problem`` (text, empty when ok).
    """
    one_of(expected, ("auto", "full", "mini", "found"), "expected")
    root, _ = resolve_root(root)
    found = {row["track_id"]: row for row in _scan(Path(root))}
    index = gtzan_index()
    known = {
        "md5": dict(zip(index["track_id"], index["md5"])),
        "ogg_sha256": _sha256_table("gtzan_mini_ogg_SHA256SUMS"),
        "archive_md5": _archive_record(Path(root)),
    }
    mini_ids = set(_sha256_table("gtzan_mini_SHA256SUMS"))
    if expected == "auto":
        expected = "mini" if set(found) <= mini_ids else "full"
    expected_ids = {"full": set(index["track_id"]), "mini": mini_ids, "found": set()}[expected]
    wanted = sorted(expected_ids | set(found))
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    def check(track_id: str) -> dict:
        return _check_track(track_id, found.get(track_id), known, decode=decode, duration_range=duration_range)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        rows = list(tqdm(pool.map(check, wanted), total=len(wanted), disable=not progress, desc="validate"))
    report = pd.DataFrame(rows)
    if report["exists"].any() and (report.loc[report["exists"], "checksum"] == "unknown").all():
        warnings.warn(f"{root}: no file could be checksum-verified (no published per-file sum for these files and "
                      f"no {VERIFIED_RECORD} from a verified archive download); only decoding and durations were "
                      f"checked", GenrelibWarning, stacklevel=2)
    return report


def _archive_record(root: Path) -> dict[str, str]:
    """Absolute path -> MD5 from the record a verified full download left in ``root`` (empty without one)."""
    record = root / VERIFIED_RECORD
    if not record.is_file():
        return {}
    try:
        files = json.loads(record.read_text())["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{record}: unreadable download record ({exc}); delete it, or download again") from None
    return {str((root / relpath).resolve()): digest for relpath, digest in files.items()}


def _check_track(track_id: str, row: dict | None, known: dict, *, decode: bool,
                 duration_range: tuple[float, float]) -> dict:
    from . import audio
    from .storage import file_digest

    genre = track_id.split(".")[0]
    report = {"track_id": track_id, "genre": genre, "path": row["path"] if row else None, "exists": row is not None,
              "checksum": "unknown", "decodable": False, "duration": float("nan"), "ok": False, "problem": ""}
    if row is None:
        report["problem"] = "missing"
        return report
    path = Path(row["path"])
    suffix = path.suffix.lower()
    if str(path.resolve()) in known["archive_md5"]:
        matches = file_digest(path, algorithm="md5") == known["archive_md5"][str(path.resolve())]
        report["checksum"] = "archive" if matches else "mismatch"
    elif suffix == ".wav" and track_id in known["md5"]:
        report["checksum"] = "ok" if file_digest(path, algorithm="md5") == known["md5"][track_id] else "mismatch"
    elif suffix == ".ogg" and track_id in known["ogg_sha256"]:
        # Our Ogg re-encodings have sums; an Ogg made elsewhere is not corrupt just because it differs.
        if file_digest(path) == known["ogg_sha256"][track_id]:
            report["checksum"] = "ok"
    try:
        if decode:
            y = audio.load(path, sr=None, allow_silence=True)
            report["duration"] = len(y) / audio.info(path)["samplerate"]
        else:
            report["duration"] = audio.info(path)["duration"]
        report["decodable"] = True
    except AudioError as exc:
        report["problem"] = str(exc)
    if report["checksum"] == "mismatch":
        reference = ("what the verified archive unpacked" if str(path.resolve()) in known["archive_md5"]
                     else "the published GTZAN")
        report["problem"] = report["problem"] or f"checksum mismatch (file differs from {reference})"
    elif report["decodable"] and not duration_range[0] <= report["duration"] <= duration_range[1]:
        report["problem"] = (f"duration {report['duration']:.2f} s, expected {duration_range[0]}-"
                             f"{duration_range[1]} s")
    report["ok"] = not report["problem"]
    return report


# ------------------------------------------------------------------------------------------ download

def download(kind: str = "mini", dest: str | os.PathLike | None = None, *, force_overwrite: bool = False,
             urls: tuple[str, ...] | None = None, md5: str | None = None, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Download and unpack GTZAN, verified.

    Notebook: 01_data_exploration. CLI: ``genrelib data download {mini,full} [--url URL] [--md5 HEX]``.

    Parameters
    ----------
    kind : {"mini", "full"}
        ``"full"``: the original ``genres.tar.gz`` (md5 5b3d6ddd...; mirrors: the original host, then the
        copy in the Hugging Face dataset ``marsyas/gtzan``). ``"mini"``: the 100-clip subset of
        TempoBeatDownbeat/gtzan_mini at commit a61439e8, each WAV checked against the shipped SHA-256.
    dest : path, optional
        Folder to unpack into (``<dest>/genres/<genre>/...``); default ``./data/gtzan`` (full) or
        ``./data/gtzan_mini``.
    force_overwrite : bool
        Download and unpack again even if the folder is complete.
    urls : tuple of str, optional
        Mirrors to use instead of :data:`REMOTES`; for ``"full"`` the default is ``$GENRELIB_GTZAN_URL``
        when set (an institutional copy; tests point it at 127.0.0.1), else the published mirrors.
    md5 : str, optional
        The archive's MD5 when a mirror serves another archive than the published one (``"full"`` only).

    Returns
    -------
    Path
        ``dest``, ready for :func:`load_gtzan`.

    Notes
    -----
    The archive is fetched into ``<dest>/<filename>.part``; an interrupted download resumes from there
    (HTTP range request) on the next call. Only after the archive's checksum (full) or every member's
    checksum (mini) is verified is anything unpacked, into a temporary folder inside ``dest`` that is renamed
    to ``dest/genres`` once complete: an interrupted or disk-full unpack leaves no ``genres/`` behind, and
    the next call unpacks again from the kept archive. A full unpack records the archive's MD5 and every
    file's MD5 in ``dest/`` :data:`VERIFIED_RECORD`, which :func:`validate` uses for the ``.au`` files that
    have no published per-file checksum.
    """
    one_of(kind, tuple(REMOTES), "kind")
    remote = REMOTES[kind]
    dest = Path(dest or ("data/gtzan" if kind == "full" else "data/gtzan_mini"))
    if _download_complete(kind, dest) and not force_overwrite:
        return dest
    if urls is None and kind == "full" and os.environ.get("GENRELIB_GTZAN_URL"):
        urls = (os.environ["GENRELIB_GTZAN_URL"],)
    if md5 is not None and kind != "full":
        raise ParameterError("md5= applies to the full archive only (the mini set is checked per file)")
    digest = (md5 or remote.md5) if kind == "full" else remote.md5
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / remote.filename
    if force_overwrite or not archive.exists():
        try:
            download_verified(urls or remote.urls, archive, digest=digest, algorithm="md5", progress=progress,
                              timeout=timeout)
        except ChecksumError as exc:
            hint = " (a mirror with another archive: pass its --md5)" if kind == "full" and md5 is None else ""
            raise ChecksumError(f"{exc} and nothing was unpacked{hint}") from None
    if kind == "full":
        _unpack_full(archive, dest, md5=digest, progress=progress)
    else:
        _unpack_mini(archive, dest)
    return dest


#: File in a data root, written by a verified full download: what the archive's MD5 vouched for.
VERIFIED_RECORD = "genrelib_verified.json"


def _download_complete(kind: str, dest: Path) -> bool:
    """A finished unpack: ``genres/`` exists (it only ever appears by a rename) and, for the full archive,
    the record written after it."""
    if not (dest / "genres").is_dir():
        return False
    return kind != "full" or (dest / VERIFIED_RECORD).is_file()


def download_verified(urls, dest: str | os.PathLike, *, digest: str | None, algorithm: str = "sha256",
                      progress: bool = True, timeout: float = 60.0) -> Path:
    """Fetch ``dest`` from the first of ``urls`` that answers and return it, checked against ``digest``.

    :func:`pooch.retrieve` checks the hash (``known_hash``) and moves only a matching file onto ``dest``
    (``digest=None``: no known sum). Pooch's own HTTP downloader always starts from byte 0, so the bytes come
    through :class:`ResumableDownloader`: they go to ``<dest>.part``, and an interrupted download resumes from it
    by HTTP range request. A mismatch deletes the download and raises :class:`ChecksumError`; when every mirror
    fails, :class:`DownloadError` lists why.
    """
    import pooch

    dest, failures = Path(dest), []
    known_hash = None if digest is None else f"{algorithm}:{digest}"
    downloader = ResumableDownloader(dest.with_name(dest.name + ".part"), progress=progress, timeout=timeout)
    for url in urls:
        try:
            with _pooch_logging(verbose=progress):
                return Path(pooch.retrieve(url, known_hash, fname=dest.name, path=dest.parent,
                                           downloader=downloader))
        except DownloadError as exc:
            failures.append(str(exc))
        except ValueError as exc:  # pooch's hash mismatch; the downloaded bytes are already deleted
            raise ChecksumError(f"{dest}: downloaded from {url}, its {algorithm} is not the expected {digest}; "
                                f"the file was deleted") from None
    raise DownloadError("every mirror failed:\n  " + "\n  ".join(failures))


@contextlib.contextmanager
def _pooch_logging(*, verbose: bool):
    """Pooch's "Downloading data from ..." line only where a progress bar is wanted too."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class ResumableDownloader:
    """A pooch downloader (``downloader(url, output_file, pooch)``) that keeps the bytes in ``part`` while they
    arrive, asks only for the missing tail on a second try (HTTP range request), draws a tqdm progress bar,
    and hands the complete file to pooch for its hash check."""

    def __init__(self, part: Path, *, progress: bool = True, timeout: float = 60.0):
        self.part, self.progress, self.timeout = Path(part), progress, timeout

    def __call__(self, url: str, output_file, pooch=None) -> None:
        import shutil

        self.fetch(url)
        shutil.move(self.part, output_file)

    def fetch(self, url: str) -> Path:
        """Bring ``part`` up to the whole file at ``url``; :class:`DownloadError` keeps what arrived."""
        import requests
        from tqdm.auto import tqdm

        offset = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
                if response.status_code == 416:  # range past the end: the part file is already complete
                    return self.part
                if response.status_code not in (200, 206):
                    raise DownloadError(f"{url}: HTTP {response.status_code}")
                mode = "ab" if response.status_code == 206 else "wb"
                done = offset if mode == "ab" else 0
                total = done + int(response.headers.get("Content-Length", 0)) or None
                with open(self.part, mode) as handle, tqdm(total=total, initial=done, unit="B", unit_scale=True,
                                                           disable=not self.progress, desc=self.part.name) as bar:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        handle.write(chunk)
                        bar.update(len(chunk))
        except requests.RequestException as exc:
            raise DownloadError(f"{url}: {exc} (partial data kept in {self.part}; a re-run resumes)") from exc
        return self.part


def _unpack_full(archive: Path, dest: Path, *, md5: str | None, progress: bool = False) -> None:
    """Unpack member by member into a temporary folder inside ``dest``, then rename its ``genres/`` into
    place and write :data:`VERIFIED_RECORD` (relative path -> MD5 of every file)."""
    import shutil
    import tarfile
    import tempfile
    import zlib

    from tqdm.auto import tqdm

    from .storage import atomic_write_json, file_digest

    (dest / VERIFIED_RECORD).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix=".unpacking-", dir=dest) as tmp:
        staged = Path(tmp)
        try:
            with tarfile.open(archive, "r:gz") as tar, tqdm(desc=f"unpack {archive.name}", unit=" files",
                                                            disable=not progress) as bar:
                for member in tar:
                    tar.extract(member, staged, filter="data")
                    bar.update(member.isfile())
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise ChecksumError(f"{archive}: cannot unpack ({exc}); nothing was unpacked, the archive is kept") \
                from None
        except OSError as exc:
            raise DataError(f"{archive}: unpacking into {dest} failed ({exc}; disk full?); nothing was unpacked, "
                            f"the archive is kept and a re-run unpacks again") from None
        if not (staged / "genres").is_dir():
            raise ChecksumError(f"{archive}: no genres/ folder inside; nothing was unpacked")
        files = {str(path.relative_to(staged).as_posix()): file_digest(path, algorithm="md5")
                 for path in sorted((staged / "genres").rglob("*")) if path.is_file()}
        if (dest / "genres").exists():
            shutil.rmtree(dest / "genres")
        os.replace(staged / "genres", dest / "genres")
    atomic_write_json(dest / VERIFIED_RECORD, {"archive": archive.name, "archive_md5": md5, "files": files},
                      indent=1)


def _unpack_mini(archive: Path, dest: Path) -> None:
    import hashlib
    import shutil
    import tempfile
    import zipfile


    expected = _sha256_table("gtzan_mini_SHA256SUMS")
    try:
        with zipfile.ZipFile(archive) as zf, tempfile.TemporaryDirectory(dir=dest) as tmp:
            members = {Path(n).stem: n for n in zf.namelist() if n.endswith(".wav") and "/genres/" in n}
            missing = sorted(set(expected) - set(members))
            if missing:
                raise ChecksumError(f"{archive}: {len(missing)} clip(s) missing, e.g. {missing[0]}; nothing unpacked")
            staged = Path(tmp) / "genres"
            for track_id, name in sorted(members.items()):
                if track_id not in expected:
                    continue
                data = zf.read(name)
                if hashlib.sha256(data).hexdigest() != expected[track_id]:
                    raise ChecksumError(f"{archive}: {name} fails its SHA-256 check; nothing unpacked")
                target = staged / track_id.split(".")[0] / f"{track_id}.wav"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            if (dest / "genres").exists():
                shutil.rmtree(dest / "genres")
            os.replace(staged, dest / "genres")
    except zipfile.BadZipFile as exc:
        raise ChecksumError(f"{archive}: not a valid zip archive ({exc}); nothing unpacked") from exc


# -------------------------------------------------------------------------------------------- splits

@dataclass(frozen=True)
class Split:
    """Track ids per side, with the protocol and seed that made them (saved beside every result)."""

    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]
    protocol: str
    seed: int | None = None
    fold: int | None = None
    notes: str = ""

    def __post_init__(self):
        sides = [set(self.train), set(self.valid), set(self.test)]
        overlap = (sides[0] & sides[1]) | (sides[0] & sides[2]) | (sides[1] & sides[2])
        if overlap:
            raise DataError(f"split {self.protocol!r}: track(s) on two sides: {', '.join(sorted(overlap)[:5])}")

    def side_of(self, track_id: str) -> str | None:
        for side in ("train", "valid", "test"):
            if track_id in getattr(self, side):
                return side
        return None

    def to_json(self, path: str | os.PathLike) -> None:
        from .storage import atomic_write_json

        atomic_write_json(path, asdict(self))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Split":
        values = json.loads(Path(path).read_text())
        return cls(**{k: tuple(v) if k in ("train", "valid", "test") else v for k, v in values.items()})

    def summary(self) -> pd.DataFrame:
        """Tracks per genre and side."""
        rows = [{"side": side, "genre": t.split(".")[0]} for side in ("train", "valid", "test")
                for t in getattr(self, side)]
        return pd.crosstab(pd.DataFrame(rows)["genre"], pd.DataFrame(rows)["side"])[["train", "valid", "test"]]


def _ids_and_genres(index: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if not {"track_id", "genre"} <= set(index.columns):
        raise ParameterError("index needs 'track_id' and 'genre' columns (from load_gtzan)")
    if index["track_id"].duplicated().any():
        raise ParameterError("index has duplicate track ids: split tracks, not segments")
    return index["track_id"].to_numpy(str), index["genre"].to_numpy(str)


def split_random(index: pd.DataFrame, *, test_size: float = 0.25, valid_size: float = 0.1,
                 seed: int = 0) -> Split:
    """Stratified random split by track: test, then validation carved from the rest.

    Notebook: 01_data_exploration.

    The paper's per-genre recalls fit about 25 test tracks per genre (.52 = 13/25, .96 = 24/25,
    .71 ~ 17/24), so a stratified 75/25 track split is its most likely protocol; it is our ``"paper"``
    protocol. ``valid_size`` is a fraction of the whole set (0.1 = 10 tracks per genre of full GTZAN).

    An index with a ``group`` column (a collection, :func:`genrelib.collection.load_collection`) is split by
    group: the test side is one fold of ``round(1 / test_size)`` of ``StratifiedGroupKFold``, validation whole
    groups of the rest (``GroupShuffleSplit``), so no group (artist, album, the excerpts of one track) is on
    two sides.
    """
    from sklearn.model_selection import train_test_split

    test_size = positive_number(test_size, "test_size")
    if not test_size < 1 or not 0 <= valid_size < 1 - test_size:
        raise ParameterError(f"test_size={test_size!r} and valid_size={valid_size!r} must be fractions of the tracks "
                             f"with test_size + valid_size < 1")
    ids, genres = _ids_and_genres(index)
    groups = split_groups(index)
    if groups is not None:
        return _split_random_grouped(ids, genres, groups, test_size=test_size, valid_size=valid_size, seed=seed)
    valid: np.ndarray = np.array([], dtype=str)
    try:
        rest, test, rest_genres, _ = train_test_split(ids, genres, test_size=test_size, stratify=genres,
                                                      random_state=seed)
        if valid_size:
            fraction = positive_number(valid_size, "valid_size") / (1 - test_size)
            rest, valid = train_test_split(rest, test_size=fraction, stratify=rest_genres, random_state=seed)
    except ValueError as exc:  # scikit-learn's stratification refuses sides smaller than the genre count
        raise DataError(f"the paper split of {len(ids)} tracks (test_size={test_size}, valid_size={valid_size}) "
                        f"leaves a side with fewer tracks than genres: {exc}") from None
    return Split(tuple(sorted(rest)), tuple(sorted(valid)), tuple(sorted(test)), protocol="paper", seed=seed,
                 notes=f"stratified by genre, test_size={test_size}, valid_size={valid_size}")


def split_fault_filtered(index: pd.DataFrame | None = None) -> Split:
    """The fault-filtered, artist-disjoint split of Kereliuk, Sturm & Larsen (2015): 443/197/290 tracks.

    With ``index``, keep only tracks present in it (on the mini set: 40 train, 49 valid, 4 test; 7
    tracks are excluded by the filter); ``notes`` then says how many of the lists' tracks are absent, and
    which (the first ten). A collection's index (:func:`load_collection`) raises :class:`ParameterError`.
    """
    sides = {}
    for side in ("train", "valid", "test"):
        text = _resource(f"splits/{side}_filtered.txt").read_text()
        sides[side] = [Path(line.strip()).stem for line in text.splitlines() if line.strip()]
    notes = "Kereliuk et al. 2015 fault-filtered artist-disjoint split"
    if index is not None and split_groups(index) is not None:
        raise ParameterError("protocol 'fault_filtered' is a split of GTZAN's own tracks (Kereliuk et al.); for "
                             "your own collection use 'paper' or 'kfold'")
    if index is not None:
        present = set(_ids_and_genres(index)[0])
        absent = sorted(t for ids in sides.values() for t in ids if t not in present)
        sides = {side: [t for t in ids if t in present] for side, ids in sides.items()}
        if absent:
            listed = ", ".join(absent[:10]) + (f", ... ({len(absent) - 10} more)" if len(absent) > 10 else "")
            notes += f"; {len(absent)} of its {sum(map(len, sides.values())) + len(absent)} tracks absent: {listed}"
    return Split(*(tuple(sorted(sides[s])) for s in ("train", "valid", "test")), protocol="fault_filtered",
                 notes=notes)


def kfold(index: pd.DataFrame, *, k: int = 10, seed: int = 0, valid_size: float = 0.1) -> list[Split]:
    """Stratified k-fold by track; in each fold a stratified validation part is carved from training.

    ``valid_size`` is a fraction of the training tracks of each fold (0 for none). An index with a
    ``group`` column is split by group (``StratifiedGroupKFold``, validation by ``GroupShuffleSplit``).
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    k = positive_int(k, "k")
    if k < 2:
        raise ParameterError(f"k={k} must be at least 2")
    ids, genres = _ids_and_genres(index)
    groups = split_groups(index)
    if groups is not None:
        return _kfold_grouped(ids, genres, groups, k=k, seed=seed, valid_size=valid_size)
    smallest = int(pd.Series(genres).value_counts().min())
    if k > smallest:
        raise DataError(f"{k}-fold needs at least {k} tracks of every genre; the smallest genre here has {smallest}")
    folds = []
    for fold, (train_at, test_at) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(ids, genres)):
        train, valid = ids[train_at], np.array([], dtype=str)
        if valid_size:
            n_valid = max(round(valid_size * len(train)), len(set(genres)))  # at least one per genre
            train, valid = train_test_split(train, test_size=n_valid, stratify=genres[train_at],
                                            random_state=seed)
        folds.append(Split(tuple(sorted(train)), tuple(sorted(valid)), tuple(sorted(ids[test_at])),
                           protocol="kfold", seed=seed, fold=fold, notes=f"{k}-fold stratified by genre"))
    return folds


def _artist_groups(index: pd.DataFrame) -> np.ndarray:
    """One group label per track: its artist, or the track itself when the artist is unknown (a collection's
    ``group``: its manifest group, else its source track, so excerpts of one track stay together)."""
    if "group" in index.columns:
        return index["group"].astype(str).to_numpy()
    artists = index["artist"] if "artist" in index.columns else \
        index[["track_id"]].merge(artist_index(), on="track_id", how="left")["artist"]
    return np.array([artist if isinstance(artist, str) and artist else f"unknown artist ({track})"
                     for track, artist in zip(index["track_id"], artists)])


def single_artist_genres(index: pd.DataFrame) -> dict[str, str]:
    """Genres of ``index`` whose tracks are all by one artist, with that artist (``{"blues": "John Lee
    Hooker", ...}`` on the mini set): no artist-disjoint test of them is possible."""
    return _single_artist(index["genre"].to_numpy(str), _artist_groups(index))


def _single_artist(genres: np.ndarray, groups: np.ndarray) -> dict[str, str]:
    per_genre = pd.Series(groups, index=genres).groupby(level=0).agg(lambda artists: sorted(set(artists)))
    return {genre: artists[0] for genre, artists in per_genre.items() if len(artists) == 1}


def artists_per_genre(index: pd.DataFrame) -> pd.DataFrame:
    """How many artists each genre of ``index`` holds, and how much of it its most frequent artist plays.

    Notebook: 01_data_exploration.

    Returns
    -------
    pd.DataFrame
        Indexed by genre: ``tracks``, ``artists`` (distinct known artists), ``unknown`` (tracks without one),
        ``top_artist``, ``top_tracks`` (that artist's tracks).
    """
    frame = index[["track_id", "genre"]].assign(group=_artist_groups(index))
    known = frame[~frame["group"].str.startswith("unknown artist")]
    top = known.groupby("genre")["group"].agg(lambda artists: artists.value_counts().index[0])
    return pd.DataFrame({
        "tracks": frame.groupby("genre").size(),
        "artists": known.groupby("genre")["group"].nunique(),
        "unknown": frame.groupby("genre").size() - known.groupby("genre").size(),
        "top_artist": top,
        "top_tracks": known.groupby("genre")["group"].agg(lambda artists: artists.value_counts().iloc[0]),
    }).fillna({"artists": 0, "unknown": 0}).astype({"artists": int, "unknown": int}).rename_axis("genre")


def fault_filtered_exclusions(index: pd.DataFrame) -> pd.DataFrame:
    """Tracks of ``index`` that the fault-filtered lists leave out, with what Sturm's index says of them.

    Notebook: 01_data_exploration.

    Returns
    -------
    pd.DataFrame
        ``track_id``, ``artist``, ``title``, ``same_song_as`` (other GTZAN tracks with the same artist and
        title in Sturm's index, comma-separated; empty when none: then the reason is not in the index).
    """
    filtered = split_fault_filtered()
    kept = {*filtered.train, *filtered.valid, *filtered.test}
    artists = artist_index()
    excluded = artists[artists["track_id"].isin(set(index["track_id"]) - kept)]
    rows = []
    for row in excluded.itertuples():
        same = artists[(artists["artist"] == row.artist) & (artists["title"] == row.title)
                       & (artists["track_id"] != row.track_id)] if row.artist and row.title else artists.iloc[:0]
        rows.append({"track_id": row.track_id, "artist": row.artist, "title": row.title,
                     "same_song_as": ", ".join(same["track_id"])})
    return pd.DataFrame(rows, columns=["track_id", "artist", "title", "same_song_as"])


def split_by_artist(index: pd.DataFrame, *, k: int | None = None, seed: int = 0,
                    valid_size: float = 0.1) -> list[Split]:
    """Artist-disjoint k-fold: no artist has tracks on two sides of any fold (scikit-learn's
    ``StratifiedGroupKFold``, groups = Sturm's artists, stratified by genre).

    Notebook: 05_evaluation. Protocol ``"artist"``.

    Parameters
    ----------
    index : pd.DataFrame
        ``track_id``, ``genre`` and (optionally; else :func:`artist_index` is used) ``artist`` per track.
    k : int >= 2, optional
        Folds; each track of a testable genre is tested exactly once. Default: 10, or 5 when a genre has
        fewer than 50 tracks, and never more than the smallest testable genre's tracks (so that every fold
        can hold each genre).
    seed : int
    valid_size : float in [0, 1)
        Validation fraction of each fold's training tracks, carved by artist as well (so early stopping
        never sees a training artist either).

    Returns
    -------
    list of Split
        ``k`` folds; ``notes`` names the genres that cannot be tested.

    Notes
    -----
    A genre whose tracks are all by one artist (on the mini set: blues, classical, reggae, rock) cannot be
    tested on an unseen artist. Its tracks are *training* tracks in every fold and never tested, so the
    classifier still chooses among all genres and its mistakes into those genres still count, but the
    reported accuracy covers only the other genres' tracks. A track of unknown artist (81 in full GTZAN)
    is its own group: if it is by an artist present elsewhere, that leak is not detectable here.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    ids, genres = _ids_and_genres(index)
    groups = _artist_groups(index)
    untestable = _single_artist(genres, groups)
    # An artist of a single-artist genre who also plays in another genre stays in training there too.
    testable = ~np.isin(genres, list(untestable)) & ~np.isin(groups, list(untestable.values()))
    smallest = pd.Series(genres[testable]).value_counts()
    if k is None:
        k = min(10 if pd.Series(genres).value_counts().min() >= 50 else 5, int(smallest.min()) if len(smallest) else 2)
    k = positive_int(k, "k")
    if k < 2:
        raise ParameterError(f"k={k} must be at least 2")
    if len(smallest) and smallest.min() < k:
        raise DataError(f"the artist protocol's {k} folds need at least {k} tracks of every testable genre; "
                        f"{smallest.idxmin()} has {smallest.min()} (choose fewer folds)")
    n_groups = len(set(groups[testable]))
    if n_groups < k:
        raise DataError(f"the artist protocol needs at least {k} artists outside single-artist genres; this data "
                        f"has {n_groups}")
    notes = f"{k}-fold by artist (Sturm's index), stratified by genre"
    if untestable:
        notes += ("; one artist only, trained on in every fold but never tested: "
                  + ", ".join(f"{genre} ({artist})" for genre, artist in sorted(untestable.items())))
    always_train = ids[~testable]
    artist_of = dict(zip(ids, groups))
    ids, genres, groups = ids[testable], genres[testable], groups[testable]
    folds = []
    splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
    for fold, (train_at, test_at) in enumerate(splitter.split(ids, genres, groups)):
        train, valid = _carve_by_group(ids[train_at], groups[train_at], valid_size, seed)
        folds.append(Split(tuple(sorted([*train, *always_train])), tuple(sorted(valid)), tuple(sorted(ids[test_at])),
                           protocol="artist", seed=seed, fold=fold, notes=notes))
        _check_artist_disjoint(folds[-1], artist_of)
    return folds


def _carve_by_group(ids: np.ndarray, groups: np.ndarray, valid_size: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid): about ``valid_size`` of the tracks, whole artists at a time. Not stratified: a
    stratified group split needs ``1 / valid_size`` tracks of every genre per fold, which small sets lack,
    and validation only picks the epoch."""
    from sklearn.model_selection import GroupShuffleSplit

    if not valid_size or len(set(groups)) < 2:
        return ids, np.array([], dtype=str)
    train_at, valid_at = next(GroupShuffleSplit(1, test_size=valid_size, random_state=seed).split(ids, groups=groups))
    return ids[train_at], ids[valid_at]


def _check_artist_disjoint(split: Split, artist_of: dict[str, str], *, what: str = "artist") -> None:
    """Raise :class:`LeakageError` when a group (``what``) has tracks on two sides of ``split``."""
    def groups(side):
        return {artist_of[t] for t in getattr(split, side) if t in artist_of}

    shared = sorted((groups("test") & (groups("train") | groups("valid"))) | (groups("valid") & groups("train")))
    if shared:
        raise LeakageError(f"{split.protocol} split fold {split.fold}: {what}(s) on both sides: "
                           f"{', '.join(shared[:5])}")


def split_groups(index: pd.DataFrame) -> np.ndarray | None:
    """The group of each track of a collection (its manifest group, else its source track), or None for an
    index without a ``group`` column (GTZAN, whose ``paper`` and ``kfold`` splits stay by track)."""
    return index["group"].astype(str).to_numpy() if "group" in index.columns else None


def _require_groups(genres: np.ndarray, groups: np.ndarray, needed: int, protocol: str) -> None:
    """A clear error when a label has fewer independent groups than ``protocol`` needs to test it."""
    per_label = pd.Series(groups).groupby(genres).nunique()
    short = per_label[per_label < needed]
    if len(short):
        label, count = short.index[0], int(short.iloc[0])
        raise DataError(f"label {label!r} has {count} track(s) (or groups); {protocol} needs at least {needed} per "
                        f"label, so that every label is both trained on and tested (add tracks, or choose a "
                        f"protocol with fewer folds)")


def _grouped_folds(ids, genres, groups, k: int, seed: int):
    import warnings as _warnings

    from sklearn.model_selection import StratifiedGroupKFold

    with _warnings.catch_warnings():
        # _require_groups has already said what matters; scikit-learn's warning on sparse labels adds nothing.
        _warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(ids, genres, groups))


def _split_random_grouped(ids, genres, groups, *, test_size: float, valid_size: float, seed: int) -> Split:
    n = max(2, round(1 / test_size))
    _require_groups(genres, groups, n, f"the paper protocol (test_size={test_size}: 1 of {n} group folds)")
    rest_at, test_at = _grouped_folds(ids, genres, groups, n, seed)[0]
    fraction = valid_size / (1 - test_size) if valid_size else 0.0
    train, valid = _carve_by_group(ids[rest_at], groups[rest_at], fraction, seed)
    split = Split(tuple(sorted(train)), tuple(sorted(valid)), tuple(sorted(ids[test_at])), protocol="paper",
                  seed=seed, notes=f"by group (no group on two sides), stratified by label: test = 1 of {n} "
                                   f"group folds, valid_size={valid_size}")
    _check_artist_disjoint(split, dict(zip(ids, groups)), what="group")
    return split


def _kfold_grouped(ids, genres, groups, *, k: int, seed: int, valid_size: float) -> list[Split]:
    _require_groups(genres, groups, k, f"{k}-fold")
    folds, group_of = [], dict(zip(ids, groups))
    for fold, (train_at, test_at) in enumerate(_grouped_folds(ids, genres, groups, k, seed)):
        train, valid = _carve_by_group(ids[train_at], groups[train_at], valid_size, seed)
        folds.append(Split(tuple(sorted(train)), tuple(sorted(valid)), tuple(sorted(ids[test_at])), protocol="kfold",
                           seed=seed, fold=fold, notes=f"{k}-fold by group, stratified by label"))
        _check_artist_disjoint(folds[-1], group_of, what="group")
    return folds


# ------------------------------------------------------------------------------------------ synthetic

def synthetic_gtzan(dest: str | os.PathLike, *, per_genre: int = 4, seconds: float = 5.0, seed: int = 0,
                    sr: int = 22050) -> Path:
    """Write a GTZAN-shaped synthetic set: ``<dest>/genres/<genre>/<genre>.000NN.wav``.

    Each genre gets its own learnable signature: a harmonic tone around a genre-specific pitch, pulsed
    at a genre-specific tempo, with a genre-specific noise level; tracks differ by random pitch offset,
    phase and noise. For tests and for the offline fallback - it is not music.

    Returns ``dest``. Existing files with the same parameters are kept.
    """
    import soundfile as sf

    per_genre = positive_int(per_genre, "per_genre")
    seconds = positive_number(seconds, "seconds")
    dest = Path(dest)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    for g, genre in enumerate(GENRES):
        folder = dest / "genres" / genre
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(per_genre):
            pitch = 110.0 * 2 ** (g / 3) * 2 ** (rng.uniform(-0.5, 0.5) / 12)
            tempo_hz = (70 + 12 * g) / 60
            harmonics = sum(np.sin(2 * np.pi * pitch * h * t + rng.uniform(0, 2 * np.pi)) / h
                            for h in range(1, 2 + g % 4))
            pulse = 0.5 + 0.5 * np.cos(2 * np.pi * tempo_hz * t) ** (2 + 2 * (g % 3))
            noise = rng.standard_normal(t.size) * (0.02 + 0.03 * (g % 5))
            y = 0.3 * harmonics * pulse / (1 + g % 4) + noise
            path = folder / f"{genre}.{number:05d}.wav"
            if not path.exists():
                from .storage import atomic_path

                with atomic_path(path) as tmp:
                    sf.write(tmp, (y / np.max(np.abs(y)) * 0.8).astype(np.float32), sr, subtype="PCM_16")
    return dest


# A collection of any labels (not GTZAN) is read by its own module; its loaders are offered here too.
from .collection import gtzan_only, is_gtzan, load_collection, load_data  # noqa: E402
