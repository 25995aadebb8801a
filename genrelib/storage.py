"""Where things live on disk, and how they get there safely.

Caches (converted weights, augmented audio, embeddings) are keyed by content and parameters and written
atomically (temporary file in the same folder, then :func:`os.replace`), so an interrupted run never
leaves a half-written file that a later run would trust.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import platformdirs

if TYPE_CHECKING:
    import pandas as pd

# mkstemp creates files readable by the owner only; finished files get the usual permissions instead.
_UMASK = os.umask(0)
os.umask(_UMASK)

__all__ = [
    "cache_dir",
    "output_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_csv",
    "atomic_save_npz",
    "file_digest",
    "params_key",
    "library_versions",
]


def cache_dir(*parts: str, create: bool = True) -> Path:
    """Root of genrelib's caches: ``$GENRELIB_CACHE``, else the platform's user cache folder.

    Parameters
    ----------
    *parts : str
        Sub-folders below the root, e.g. ``cache_dir("weights")``.
    create : bool
        Create the folder if it does not exist.
    """
    root = os.environ.get("GENRELIB_CACHE") or platformdirs.user_cache_dir("genrelib")
    path = Path(root).expanduser().joinpath(*parts)
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(path, exc) from None
    return path


def machine_paths(root: str | os.PathLike | None = None) -> dict[str, str]:
    """This machine's folders that a written result may name, longest first, with what a reader sees instead:
    ``$GENRELIB_CACHE``, ``$GENRELIB_DATA``, ``.`` (``root``, default the working directory), ``$TMPDIR`` and ``~``
    (the home folder), each both as given (made absolute) and with its links resolved, since a program may print
    either."""
    home = str(Path.home())
    places = {home if home != os.sep else None: "~", tempfile.gettempdir(): "$TMPDIR",
              str(root or Path.cwd()): ".", os.environ.get("GENRELIB_DATA"): "$GENRELIB_DATA",
              os.environ.get("GENRELIB_CACHE"): "$GENRELIB_CACHE"}
    found = {}
    for path, name in places.items():  # later (more specific) names win where two places are one folder
        if path:
            path = os.path.expanduser(path)
            found.update({os.path.abspath(path): name, str(Path(path).resolve()): name})
    return dict(sorted(found.items(), key=lambda item: -len(item[0])))


def neutral_paths(text: str, replacements: dict[str, str] | None = None) -> str:
    """``text`` with every folder of :func:`machine_paths` (or ``replacements``) replaced by its neutral name, for
    results and notebooks that are committed and read elsewhere."""
    for path, name in (replacements if replacements is not None else machine_paths()).items():
        text = text.replace(path, name)
    return text


def output_dir(kind: str, *, create: bool = True) -> Path:
    """Folder for generated artefacts of ``kind`` (``"figures"``, ``"results"``, ``"runs"``).

    ``$GENRELIB_OUTPUT/<kind>`` when set (``make demo`` points it at the project, ``make test`` at
    ``build/test-output`` so quick runs never overwrite the committed figures), else ``<project>/<kind>`` when the
    working directory is a genrelib checkout's ``notebooks/`` folder (where JupyterLab starts a notebook's kernel),
    else ``./<kind>``.
    """
    root = Path(os.environ.get("GENRELIB_OUTPUT") or _project_of_notebooks(Path.cwd()) or Path.cwd())
    path = root / kind
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(path, exc) from None
    return path


def _project_of_notebooks(folder: Path) -> Path | None:
    """The checkout whose ``notebooks/`` folder ``folder`` is (its parent holds genrelib's ``pyproject.toml`` and the
    ``genrelib`` package), else None: a kernel started beside the notebooks writes to the project's folders, so that
    running a notebook by hand leaves no ``notebooks/figures/`` behind."""
    if folder.name != "notebooks":
        return None
    project = folder.parent
    try:
        declares = 'name = "genrelib"' in (project / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return project if declares and (project / "genrelib" / "__init__.py").is_file() else None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it.

    The temporary name keeps the final suffix so that writers which dispatch on it (``soundfile``,
    ``np.savez``, Keras' ``save_weights``) behave as for the final file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{''.join(path.suffixes)}")
        os.close(fd)
    except OSError as exc:
        raise write_error(path, exc) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_error(path: Path, exc: OSError) -> "StorageError":
    """One line for a failed write: what, where, and what to do (a cache can move, an output folder too)."""
    from .errors import StorageError

    import errno

    reason = (exc.strerror or str(exc)).lower()
    in_cache = Path(path).resolve().is_relative_to(cache_dir(create=False).resolve())
    elsewhere = "set GENRELIB_CACHE to another folder" if in_cache else "write to another folder"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        remedy = f"free space or {elsewhere}"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        remedy = f"make the folder writable or {elsewhere}"
    else:
        remedy = f"check the folder, or {elsewhere}"
    return StorageError(f"{path}: cannot write ({reason}): {remedy}; nothing partial was left behind")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, values: Any, *, indent: int = 1) -> Path:
    """``values`` as indented JSON (what JSON cannot spell, e.g. a ``Path``, as ``str``), atomically."""
    return atomic_write_bytes(path, (json.dumps(values, indent=indent, default=str) + "\n").encode())


def atomic_write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """``frame`` as CSV without its index, atomically."""
    return atomic_write_bytes(path, frame.to_csv(index=False).encode())


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` of named arrays, atomically (the cache format of one clip's output)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    return Path(path)


def file_digest(path: str | os.PathLike, *, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``algorithm`` is any name :mod:`hashlib` knows, e.g. ``"md5"``), read in blocks
    by :func:`hashlib.file_digest`, never the whole file at once."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def params_key(params: dict[str, Any], *, length: int = 16) -> str:
    """Short, stable hash of a parameter dictionary (key order does not matter)."""
    text = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (``"not installed"`` for a missing one), from package
    metadata: no library is imported. Cache keys include them, since a new release can change the numbers."""
    return {name: _installed_version(name) for name in names}


@functools.lru_cache(maxsize=None)
def _installed_version(name: str) -> str:
    # Reading metadata scans sys.path (milliseconds); an installed version does not change within a process.
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
