"""Embeddings: audio -> one vector per patch, through a named backend; cached per clip on disk.

Notebook: 03_vggish_features.

Backends register by name in :data:`BACKENDS` (``"module:attribute"`` of a factory, imported on first
use, so a backend's heavy dependencies load only when asked for). A backend object has::

    name : str                         # registry name
    sample_rate : int                  # Hz its front end expects (16 000 for all shipped backends)
    embedding_dim : int                # d
    patch_seconds : float              # duration one embedding row covers
    patch_hop_seconds : float          # time between consecutive rows
    front_end_version : str            # changes whenever the front end's numbers would change
    weights_checksum() -> str          # identifies the weights (sha256 or "none")
    embed(y) -> np.ndarray             # y [shape=(n,)] float32 at sample_rate -> [shape=(n_patches, d)]

Its factory may offer ``describe(**options) -> BackendInfo`` (the same options; VGGish and YAMNet do), so
that :func:`describe_backend` gets the identity without building the network.

A backend may also offer the two halves of ``embed`` (VGGish does)::

    batch_size : int                   # patches per forward pass
    features(y) -> np.ndarray          # front end: y -> [shape=(n_patches, ...)] model input
    embed_patches(x) -> np.ndarray     # model: [shape=(n, ...)] -> [shape=(n, d)]

:func:`embed_dataset` then runs decoding and the front end in a background thread and fills every
forward pass with patches of several clips (full batches keep the model efficient, and an XLA-compiled
model sees one input shape).

``backend="auto"`` picks VGGish when its converted weights are cached, else the best offline backend
that is installed (musicnn-msd, ...; the weight-free ``mfcc`` baseline when none is), and says once
with a warning which backend it took instead of VGGish.
"""

from __future__ import annotations

import collections
import concurrent.futures
import importlib
import importlib.util
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from . import audio
from .checks import one_of, positive_int, valid_audio, warn
from .errors import GenrelibError, ParameterError
from .storage import atomic_save_npz, cache_dir, file_digest, params_key

__all__ = [
    "EMBEDDING_VERSION",
    "BACKENDS",
    "code_versions",
    "register_backend",
    "available_backends",
    "resolve_backend",
    "get_backend",
    "backend_factory",
    "BackendInfo",
    "describe_backend",
    "embed_audio",
    "embed_file",
    "embed_dataset",
    "load_embeddings",
    "clip_means",
    "project_clips",
    "MfccBackend",
]

#: Changes whenever this module would store other vectors for the same audio and backend (how a clip is cut
#: into patches, padded or batched); part of every embedding's cache key.
EMBEDDING_VERSION = "embed-1"

#: Registry: backend name -> "module:factory". The factory takes keyword options and returns a backend.
BACKENDS: dict[str, str] = {
    "vggish": "genrelib.vggish:VGGishBackend",
    "yamnet": "genrelib.yamnet:YAMNetBackend",
    "musicnn-msd": "genrelib.musicnn:backend_msd_musicnn",
    "musicnn-mtt": "genrelib.musicnn:backend_mtt_musicnn",
    "vgg-msd": "genrelib.musicnn:backend_msd_vgg",
    "vgg-mtt": "genrelib.musicnn:backend_mtt_vgg",
    "mfcc": "genrelib.embed:MfccBackend",
}

#: Order in which ``backend="auto"`` tries offline backends when VGGish weights are absent: by the measured
#: linear-probe accuracy of ``results/backends.md`` (mini set, 5-fold x 3 seeds; a tie goes to the smaller
#: spread over folds). A test keeps this order and that file in step.
OFFLINE_PREFERENCE = ("musicnn-msd", "vgg-msd", "musicnn-mtt", "vgg-mtt", "yamnet")

_INSTANCES: dict[tuple, Any] = {}
#: Backends that ``backend="auto"`` has already announced in this process (it says so once, not per call).
_AUTO_ANNOUNCED: set[str] = set()


def register_backend(name: str, target: str) -> None:
    """Add or replace a backend: ``target`` is ``"package.module:factory"``."""
    if ":" not in target:
        raise ParameterError(f"backend target {target!r} must look like 'module:factory'")
    BACKENDS[name] = target


def available_backends() -> list[str]:
    return sorted(BACKENDS)


def resolve_backend(name: str = "auto") -> str:
    """Turn ``"auto"`` into a concrete backend name; check other names exist.

    ``"auto"``: ``"vggish"`` when converted VGGish weights are cached, else the first backend of
    :data:`OFFLINE_PREFERENCE` (ordered by measured accuracy) that is usable here, else the weight-free
    ``"mfcc"`` baseline. Any choice but VGGish is announced once per process and backend by a
    :class:`GenrelibWarning` that names the backend and how to get VGGish.
    """
    if name != "auto":
        return one_of(name, [*BACKENDS, "auto"], "backend")
    from . import vggish

    if vggish.converted_weights_available():
        return "vggish"
    chosen = next((candidate for candidate in OFFLINE_PREFERENCE if _offline_backend_usable(candidate)), "mfcc")
    if chosen not in _AUTO_ANNOUNCED:
        _AUTO_ANNOUNCED.add(chosen)
        kind = "the weight-free baseline: no pretrained offline backend is installed either" if chosen == "mfcc" \
            else "the best measured pretrained offline backend installed (results/backends.md)"
        warn(f"backend='auto' uses {chosen!r} ({kind}): no converted VGGish weights at "
             f"{vggish.converted_weights_path()}. Get VGGish with `genrelib weights vggish --download` "
             f"(or --from-checkpoint / --from-hub), or pass backend={chosen!r} to choose it explicitly")
    return chosen


def _offline_backend_usable(name: str) -> bool:
    """Registered, its module installed and, for YAMNet, weights converted or a TF-Lite file to convert."""
    if name not in BACKENDS or not _module_installed(BACKENDS[name].split(":")[0]):
        return False
    if name == "yamnet":
        from . import yamnet

        return yamnet.converted_weights_available() or yamnet.default_tflite_path() is not None
    return True


def _module_installed(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


def get_backend(name: str = "auto", **options: Any):
    """The backend object for ``name`` (created once per process and option set, then reused)."""
    name = resolve_backend(name)
    key = (name, tuple(sorted(options.items())))
    if key not in _INSTANCES:
        _INSTANCES[key] = backend_factory(name)(**options)
    return _INSTANCES[key]


def backend_factory(name: str) -> Callable:
    """The factory registered for ``name`` in :data:`BACKENDS`, imported (not called); a
    :class:`ParameterError` when its module or attribute cannot be imported."""
    name = resolve_backend(name)
    module_name, attribute = BACKENDS[name].split(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ParameterError(f"backend {name!r} is registered as {BACKENDS[name]!r}, which cannot be "
                             f"imported ({exc})") from exc


@dataclass(frozen=True)
class BackendInfo:
    """What identifies a backend's output and how to feed it, known before its network is built.

    Attributes
    ----------
    name : str
        As the backend's ``name`` (the cache folder and the ``backend`` column).
    weights_checksum : str
        As its ``weights_checksum()``: sha256 of the weights, ``random-glorot-seed<N>`` or ``"none"``.
    front_end_version : str
    sample_rate : int [Hz]
        Rate ``embed`` expects.
    patch_seconds : float [s]
        Audio one embedding row covers (the shortest clip it embeds).
    """

    name: str
    weights_checksum: str
    front_end_version: str
    sample_rate: int
    patch_seconds: float

    @classmethod
    def of(cls, backend, *, weights_checksum: str | None = None) -> BackendInfo:
        """The info of a backend object, or of a backend class (its attributes) given ``weights_checksum``."""
        return cls(name=backend.name,
                   weights_checksum=backend.weights_checksum() if weights_checksum is None else weights_checksum,
                   front_end_version=backend.front_end_version, sample_rate=backend.sample_rate,
                   patch_seconds=backend.patch_seconds)


def describe_backend(name: str = "auto", **options: Any) -> BackendInfo:
    """The identity of backend ``name`` with ``options`` (as for :func:`get_backend`), without building it
    where its factory can tell (``describe``); otherwise from the backend object, built once per process.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    name : str
        A name from :data:`BACKENDS` or ``"auto"``.
    **options
        Keyword options of the backend's factory.

    Returns
    -------
    BackendInfo
        Equal to ``BackendInfo.of(get_backend(name, **options))``.

    Notes
    -----
    What decides whether stored embeddings can be reused, so a driver that finds nothing left to do never
    loads a model (:func:`genrelib.scale.embed_catalogue`).
    """
    name = resolve_backend(name)
    built = _INSTANCES.get((name, tuple(sorted(options.items()))))
    describe = getattr(backend_factory(name), "describe", None)
    if built is None and describe is not None:
        return describe(**options)
    return BackendInfo.of(built if built is not None else get_backend(name, **options))


def embed_audio(y: np.ndarray, *, sr: int, backend: str | Any = "auto") -> np.ndarray:
    """Embed a waveform.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio.
    sr : int > 0 [Hz]
        Its sample rate; resampled to the backend's rate (soxr) when different.
    backend : str or backend object
        A name from :data:`BACKENDS`, ``"auto"``, or an object from :func:`get_backend` (pass the object
        in loops so the model loads once).

    Returns
    -------
    embedding : np.ndarray [shape=(n_patches, d)], float32
    """
    sr = positive_int(sr, "sr")
    model = get_backend(backend) if isinstance(backend, str) else backend
    y = valid_audio(y)
    y = audio.resample(y, orig_sr=sr, target_sr=model.sample_rate)
    return np.asarray(model.embed(y), dtype=np.float32)


def _timestamps(model, n_patches: int) -> np.ndarray:
    return np.arange(n_patches, dtype=np.float32) * np.float32(model.patch_hop_seconds)


def code_versions(model) -> dict[str, str]:
    """What decides an embedding besides the audio: the backend, its weights and front end, this module's
    :data:`EMBEDDING_VERSION` (patching, batching), the decoding code (:func:`genrelib.audio.decoding_versions`)
    and the numerical libraries. Part of every embedding's cache key and of every training run's key."""
    from .storage import library_versions

    return {"backend": model.name, "weights": model.weights_checksum(), "front_end": model.front_end_version,
            "embedding": EMBEDDING_VERSION, **audio.decoding_versions(),
            **library_versions("numpy", "tensorflow", "keras")}


def _cache_key(model, audio_checksum: str) -> str:
    return params_key({"audio": audio_checksum, **code_versions(model)})


def embed_file(
    path: str | os.PathLike,
    *,
    backend: str | Any = "auto",
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Embed one file and store ``embedding`` [shape=(n_patches, d)] and ``timestamps`` [s] in an ``.npz``.

    The output is ``<output_dir>/<stem>.npz`` (default: beside the audio file); skipped when present
    unless ``overwrite``. Returns its path.
    """
    path = Path(path)
    model = get_backend(backend) if isinstance(backend, str) else backend
    target = Path(output_dir or path.parent) / f"{path.stem}.npz"
    if target.exists() and not overwrite:
        return target
    y = audio.load(path, sr=model.sample_rate, min_duration=model.patch_seconds)
    embedding = embed_audio(y, sr=model.sample_rate, backend=model)
    return atomic_save_npz(target, embedding=embedding, timestamps=_timestamps(model, len(embedding)))


@dataclass
class _Item:
    item_id: str
    path: Path
    target: Path | None = None
    n_patches: int = 0
    error: str | None = None


@dataclass
class _Pending:
    """A clip whose patches are (partly) still waiting for a forward pass."""

    item: _Item
    patches: np.ndarray
    offset: int = 0
    outputs: list = field(default_factory=list)


def embed_dataset(
    index: pd.DataFrame | Iterable[str | os.PathLike],
    *,
    backend: str | Any = "auto",
    cache_dir_: str | os.PathLike | None = None,
    batch_size: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    on_error: str = "raise",
    prefetch: int = 4,
) -> pd.DataFrame:
    """Embed every clip of an index or augmentation manifest, cached on disk.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    index : pd.DataFrame or iterable of paths
        Rows with ``path`` and ``item_id`` (augmentation manifests) or ``track_id`` (track indexes); a
        plain list of audio files gets ``item_id`` = file stem.
    backend : str or backend object
    cache_dir_ : path, optional
        Cache root; default ``cache_dir("embeddings")``. One ``.npz`` (``embedding``, ``timestamps``) per
        clip under ``<root>/<backend>/<key>.npz``, ``key`` hashing the audio file's sha256 and
        :func:`code_versions` (backend, weights, front end, embedding and decoding code, libraries), so changed
        audio, weights or code never reuse stale vectors.
    batch_size : int > 0, optional
        Patches per forward pass for backends with ``features``/``embed_patches``; default the backend's
        own (64 for VGGish).
    overwrite : bool
        Recompute cached clips.
    progress : bool
        Show a tqdm bar (clips).
    on_error : {"raise", "report"}
        ``"raise"``: after the whole pass (finished clips stay cached), raise one error listing every
        failed file. ``"report"``: return failures in the ``error`` column instead.
    prefetch : int > 0
        Clips decoded ahead of the model (bounds memory: about 0.8 MB of patches per 30 s clip).

    Returns
    -------
    pd.DataFrame
        The input rows plus ``embedding_path``, ``n_patches`` and ``error``.

    Notes
    -----
    Decoding, resampling and the front end run in a background thread while the model embeds earlier
    clips. Each clip is written atomically as soon as its last patch is embedded, so an interrupted run
    loses at most one batch and a re-run resumes where it stopped.
    """
    one_of(on_error, ("raise", "report"), "on_error")
    prefetch = positive_int(prefetch, "prefetch")
    index = _as_index(index)
    id_column = "item_id" if "item_id" in index.columns else "track_id"
    model = get_backend(backend) if isinstance(backend, str) else backend
    two_stage = hasattr(model, "features") and hasattr(model, "embed_patches")
    batch_size = positive_int(batch_size or getattr(model, "batch_size", 64), "batch_size")
    folder = (Path(cache_dir_) if cache_dir_ else cache_dir("embeddings")) / model.name
    items = [_Item(str(row[id_column]), Path(row["path"])) for _, row in index.iterrows()]

    def prepare(item: _Item):
        try:
            item.target = folder / f"{_cache_key(model, file_digest(item.path))}.npz"
            if item.target.exists() and not overwrite:
                item.n_patches = _n_patches(item.target)
                return item, None
            y = audio.load(item.path, sr=model.sample_rate, min_duration=model.patch_seconds)
            return item, model.features(y) if two_stage else y
        except (GenrelibError, OSError) as exc:
            item.error = _with_path(item.path, exc)
            return item, None

    from tqdm.auto import tqdm

    from .progress import leave

    bar = tqdm(total=len(items), disable=not progress, desc=f"embed [{model.name}]", unit="clip", leave=leave())
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="genrelib-decode")
    try:
        prepared = _prefetched(pool, prepare, items, depth=prefetch)
        if two_stage:
            _embed_batched(model, prepared, batch_size=batch_size, bar=bar)
        else:
            _embed_each(model, prepared, bar=bar)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return _report(index, items, on_error=on_error)


def _as_index(index) -> pd.DataFrame:
    if not isinstance(index, pd.DataFrame):
        paths = [Path(p) for p in index]
        index = pd.DataFrame({"item_id": [p.stem for p in paths], "path": [str(p) for p in paths]})
    if "path" not in index.columns:
        raise ParameterError("index needs a 'path' column (from genrelib.data.load_gtzan or augment_split)")
    if not {"item_id", "track_id"} & set(index.columns):
        raise ParameterError("index needs an 'item_id' or 'track_id' column")
    return index


def _with_path(path: Path, exc: Exception) -> str:
    text = str(exc)
    return text if str(path) in text else f"{path}: {text}"


def _prefetched(pool, function, items: list, *, depth: int) -> Iterator:
    """``map(function, items)`` in ``pool``, in order, with at most ``depth`` results computed ahead."""
    iterator = iter(items)
    pending = collections.deque(pool.submit(function, item) for item in itertools.islice(iterator, depth))
    while pending:
        result = pending.popleft().result()
        following = next(iterator, None)
        if following is not None:
            pending.append(pool.submit(function, following))
        yield result


def _save(model, item: _Item, embedding: np.ndarray) -> None:
    atomic_save_npz(item.target, embedding=embedding, timestamps=_timestamps(model, len(embedding)))
    item.n_patches = len(embedding)


def _embed_each(model, prepared: Iterator, *, bar) -> None:
    """One ``embed(y)`` call per clip (backends without ``features``/``embed_patches``)."""
    for item, y in prepared:
        if y is not None:
            try:
                _save(model, item, embed_audio(y, sr=model.sample_rate, backend=model))
            except GenrelibError as exc:
                item.error = _with_path(item.path, exc)
        bar.update(1)


def _embed_batched(model, prepared: Iterator, *, batch_size: int, bar) -> None:
    """Fill every forward pass with ``batch_size`` patches, across clip boundaries."""
    queue: collections.deque[_Pending] = collections.deque()
    waiting = 0
    for item, patches in prepared:
        if patches is None:
            bar.update(1)
            continue
        queue.append(_Pending(item, np.asarray(patches)))
        waiting += len(patches)
        while waiting >= batch_size:
            waiting -= _forward(model, queue, batch_size, bar)
    while waiting:
        waiting -= _forward(model, queue, batch_size, bar)


def _forward(model, queue: collections.deque, batch_size: int, bar) -> int:
    """Embed the next ``batch_size`` waiting patches; save every clip this completes. Returns patches used."""
    slices, taken = [], 0
    for pending in queue:
        take = min(batch_size - taken, len(pending.patches) - pending.offset)
        slices.append((pending, pending.offset, take))
        taken += take
        if taken == batch_size:
            break
    try:
        outputs = model.embed_patches(np.concatenate([p.patches[o:o + n] for p, o, n in slices]))
    except GenrelibError as exc:
        outputs = None
        for pending, _, _ in slices:
            pending.item.error = _with_path(pending.item.path, exc)
    start = 0
    for pending, offset, take in slices:
        if outputs is not None and pending.item.error is None:
            pending.outputs.append(outputs[start:start + take])
        pending.offset, start = offset + take, start + take
    while queue and queue[0].offset == len(queue[0].patches):
        finished = queue.popleft()
        if finished.item.error is None:
            _save(model, finished.item, np.concatenate(finished.outputs).astype(np.float32))
        bar.update(1)
    return taken


def _report(index: pd.DataFrame, items: list[_Item], *, on_error: str) -> pd.DataFrame:
    result = index.copy()
    result["embedding_path"] = [str(i.target) if i.error is None else None for i in items]
    result["n_patches"] = [i.n_patches if i.error is None else 0 for i in items]
    result["error"] = [i.error for i in items]
    failed = [i.error for i in items if i.error]
    if failed and on_error == "raise":
        raise GenrelibError(f"{len(failed)} of {len(items)} clips could not be embedded "
                            f"(the others are cached):\n  " + "\n  ".join(failed))
    return result


def _n_patches(path: Path) -> int:
    with np.load(path) as data:
        return int(data["embedding"].shape[0])


def load_embeddings(frame: pd.DataFrame) -> list[np.ndarray]:
    """Read the ``embedding_path`` column of :func:`embed_dataset`'s result into arrays."""
    arrays = []
    for path in frame["embedding_path"]:
        with np.load(path) as data:
            arrays.append(data["embedding"])
    return arrays


def clip_means(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """One vector per clip: the mean over its patches.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    embeddings : sequence of np.ndarray [shape=(n_patches_i, d)]

    Returns
    -------
    np.ndarray [shape=(n_clips, d)], float64
    """
    if len(embeddings) == 0:
        raise ParameterError("embeddings is empty: no clips to average")
    dims = {np.shape(e)[1] if np.ndim(e) == 2 else None for e in embeddings}
    if None in dims or len(dims) != 1:
        raise ParameterError(f"every embedding must be (n_patches, d) with one d, got shapes "
                             f"{sorted({np.shape(e) for e in embeddings})[:3]}")
    if any(len(e) == 0 for e in embeddings):
        raise ParameterError("an embedding has 0 patches")
    return np.stack([np.asarray(e, dtype=np.float64).mean(axis=0) for e in embeddings])


def project_clips(embeddings: list[np.ndarray], *, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Each clip's mean embedding, standardised, projected to two dimensions with sklearn.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    embeddings : list of np.ndarray [shape=(n_patches, d)]
        One sequence per clip (:func:`load_embeddings`).
    method : {"pca", "tsne"}
        Linear PCA (shows the directions of largest variance) or t-SNE (keeps neighbourhoods; the
        perplexity is capped below the number of clips).
    seed : int
        Random state of t-SNE (PCA is deterministic).

    Returns
    -------
    points : np.ndarray [shape=(n_clips, 2)]
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    one_of(method, ("pca", "tsne"), "method")
    if len(embeddings) < 3:
        raise ParameterError(f"need at least 3 clips to project, got {len(embeddings)}")
    means = StandardScaler().fit_transform(clip_means(embeddings))
    if method == "pca":
        return PCA(n_components=2).fit_transform(means)
    perplexity = min(30.0, (len(means) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(means)


class MfccBackend:
    """A weight-free classical backend: per 0.96 s patch, mean and std of 20 MFCCs (40-d).

    Same patch grid as VGGish (non-overlapping 0.96 s), so it slots in wherever VGGish does. It needs no
    download and serves as a fast, honest baseline and in tests; it is not the paper's feature.
    """

    name = "mfcc"
    sample_rate = 16000
    n_mfcc = 20
    embedding_dim = 2 * n_mfcc
    patch_seconds = 0.96
    patch_hop_seconds = 0.96
    front_end_version = "mfcc-1"

    def weights_checksum(self) -> str:
        return "none"

    def embed(self, y: np.ndarray) -> np.ndarray:
        import librosa

        hop = 160  # 10 ms, as VGGish
        frames_per_patch = 96
        mfcc = librosa.feature.mfcc(y=y, sr=self.sample_rate, n_mfcc=self.n_mfcc, n_fft=400, hop_length=hop,
                                    center=False)
        n_patches = mfcc.shape[1] // frames_per_patch
        if n_patches == 0:
            raise ParameterError(f"audio of {len(y) / self.sample_rate:.3f} s is shorter than one "
                                 f"{self.patch_seconds} s patch")
        patches = mfcc[:, : n_patches * frames_per_patch].reshape(self.n_mfcc, n_patches, frames_per_patch)
        return np.concatenate([patches.mean(axis=2).T, patches.std(axis=2).T], axis=1).astype(np.float32)
