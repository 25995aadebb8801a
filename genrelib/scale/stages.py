"""The per-batch work of :func:`genrelib.scale.embed_catalogue`: hashing, decoding and the model worker.

Notebook: 07_scaling_out.

Module-level functions and a class, so that Ray can ship them to worker processes; ``engine="local"`` calls
the same ones in this process. Each takes and returns a pyarrow table of one batch of clips.
"""

from __future__ import annotations

import numpy as np

from .. import audio, embed
from ..checks import valid_audio, warn
from ..errors import GenrelibError
from ..storage import file_digest
from .parquet import hashed_schema, input_schema, nested_list, output_schema

__all__ = ["identity_columns", "failure_reason", "hash_batch", "decode_batch", "EmbedWorker"]


def identity_columns(info: embed.BackendInfo) -> dict[str, str]:
    """The backend identity as the output's columns: a row is reused only for the same three values."""
    return {"backend": info.name, "weights_checksum": info.weights_checksum,
            "front_end_version": info.front_end_version}


def failure_reason(exc: Exception, path: str) -> str:
    """The text of an error row: the exception, with the file's path in front unless it already names it."""
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, GenrelibError) else str(exc)
    return text if path in text else f"{path}: {text}"


def hash_batch(batch):
    """Stage 0 (CPU task): the sha256 of each file, the key that decides whether a clip is done.

    ``batch`` is a pyarrow table of :func:`~genrelib.scale.parquet.input_schema`; returns
    :func:`~genrelib.scale.parquet.hashed_schema` (``error`` set for a file that cannot be read).
    """
    import pyarrow as pa

    checksums, errors = [], []
    for path in batch.column("path").to_pylist():
        try:
            checksums.append(file_digest(path))
            errors.append(None)
        except OSError as exc:
            checksums.append(None)
            errors.append(failure_reason(exc, path))
    return (batch.select(input_schema().names).append_column("source_checksum", pa.array(checksums, pa.string()))
            .append_column("error", pa.array(errors, pa.string())))


def decode_batch(batch, *, sample_rate: int, min_duration: float):
    """Stage 1 (CPU task): decode and resample each clip to the backend's rate.

    ``batch`` is a pyarrow table of :func:`~genrelib.scale.parquet.hashed_schema`; returns it plus ``audio``
    (float32 samples at ``sample_rate`` [Hz]; empty when the clip failed here or earlier, ``error`` then
    says why). ``min_duration`` [s]: shorter clips fail (one patch of the backend).
    """
    import pyarrow as pa

    waveforms, errors = [], []
    for path, error in zip(batch.column("path").to_pylist(), batch.column("error").to_pylist()):
        samples = np.zeros(0, dtype=np.float32)
        if error is None:
            try:
                samples = audio.load(path, sr=sample_rate, min_duration=min_duration)
            except (GenrelibError, OSError) as exc:
                error = failure_reason(exc, path)
        waveforms.append(samples)
        errors.append(error)
    offsets = np.concatenate([[0], np.cumsum([len(w) for w in waveforms])]).astype(np.int64)
    values = np.concatenate(waveforms) if waveforms else np.zeros(0, dtype=np.float32)
    table = batch.select(hashed_schema().names).set_column(
        hashed_schema().get_field_index("error"), "error", pa.array(errors, pa.string()))
    return table.append_column("audio", pa.LargeListArray.from_arrays(offsets, pa.array(values, pa.float32())))


class EmbedWorker:
    """Stage 2 (Ray actor, or in-process for ``engine="local"``): the model, loaded once, embeds batches.

    Each clip goes through :func:`genrelib.embed.embed_audio` as in :func:`~genrelib.embed.embed_dataset`.
    A two-stage backend (``features``/``embed_patches``, e.g. VGGish) instead gets the patches of the whole
    batch in one call, so a GPU sees full forward passes; its front end costs about 2 % of the model
    (5 ms per 30 s clip for VGGish on CPU), so it runs here, next to the model, rather than in the
    decoding tasks, which would each have to build the network to reach it.
    """

    def __init__(self, backend: str, target: str, options: dict, run_id: str):
        # A backend registered at run time in the driver is unknown in a fresh worker process.
        if embed.BACKENDS.get(backend) != target:
            embed.register_backend(backend, target)
        self.model = embed.get_backend(backend, **options)
        self.identity = identity_columns(embed.describe_backend(backend, **options))
        self.run_id = run_id
        self.two_stage = hasattr(self.model, "features") and hasattr(self.model, "embed_patches")
        self.warned_about_batches = False

    def __call__(self, batch):
        samples = batch.column("audio").combine_chunks()
        offsets = samples.offsets.to_numpy() - samples.offsets[0].as_py()
        values = samples.flatten().to_numpy()
        errors = batch.column("error").to_pylist()
        paths = batch.column("path").to_pylist()
        waveforms = [None if error else np.array(values[offsets[i]:offsets[i + 1]], dtype=np.float32)
                     for i, error in enumerate(errors)]
        embeddings = [None] * len(waveforms)
        if self.two_stage:
            self._embed_together(waveforms, embeddings, errors, paths)
        for i, y in enumerate(waveforms):
            if y is not None and embeddings[i] is None and errors[i] is None:
                try:
                    embeddings[i] = embed.embed_audio(y, sr=self.model.sample_rate, backend=self.model)
                except Exception as exc:  # one clip the model rejects must not stop the other 100 000
                    errors[i] = failure_reason(exc, paths[i])
        return self._table(batch, embeddings, errors)

    def _embed_together(self, waveforms, embeddings, errors, paths) -> None:
        """Front end per clip, then one ``embed_patches`` call over the batch; on failure, leave the clips
        to the per-clip path, which finds the culprit."""
        features = {}
        for i, y in enumerate(waveforms):
            if y is not None:
                try:
                    features[i] = np.asarray(self.model.features(valid_audio(y)), dtype=np.float32)
                except Exception as exc:
                    errors[i] = failure_reason(exc, paths[i])
        if not features:
            return
        try:
            output = np.asarray(self.model.embed_patches(np.concatenate(list(features.values()))), np.float32)
        except Exception as exc:  # any model error: the per-clip path names the clip that causes it
            self._warn_batch_failed(exc, len(features))
            return
        for i, part in zip(features, np.split(output, np.cumsum([len(f) for f in features.values()])[:-1])):
            embeddings[i] = part

    def _warn_batch_failed(self, exc: Exception, n_clips: int) -> None:
        # Once per worker: every later failing batch would say the same, and each costs only speed.
        if not self.warned_about_batches:
            self.warned_about_batches = True
            warn(f"{self.model.name}: a batch of {n_clips} clips failed in one forward pass "
                 f"({type(exc).__name__}: {exc}); its clips are embedded one by one instead (slower), and so is "
                 "every later batch that fails (no further warning)")

    def _table(self, batch, embeddings, errors):
        import pyarrow as pa

        n = batch.num_rows
        columns = {name: batch.column(name) for name in ("item_id", "track_id", "genre", "path", "source_checksum")}
        columns.update({key: pa.array([value] * n, pa.string()) for key, value in self.identity.items()})
        columns["patch_hop_seconds"] = pa.array([self.model.patch_hop_seconds] * n, pa.float32())
        columns["n_patches"] = pa.array([0 if e is None else len(e) for e in embeddings], pa.int32())
        columns["embedding_dim"] = pa.array([self.model.embedding_dim] * n, pa.int32())
        columns["embedding"] = nested_list(embeddings, self.model.embedding_dim)
        columns["error"] = pa.array(errors, pa.string())
        columns["run_id"] = pa.array([self.run_id] * n, pa.string())
        schema = output_schema()
        return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
