"""genrelib.scale: the Ray Data pipeline against embed_dataset, on a local 2-CPU Ray cluster.

One Ray session serves the whole module (start-up takes seconds). The embedding backend is the weight-free
``mfcc`` one, plus an instrumented copy that logs every model load and model call to a file (Ray runs them in
other processes) and can kill its own process once, to prove that Ray restarts the actor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from genrelib import GenrelibError, GenrelibWarning, ParameterError, audio, augment, cli, data, embed, scale, vggish
from genrelib.cli import _types as cli_types
from genrelib.data import synthetic_gtzan
from genrelib.scale import embed_job, throughput

ray = pytest.importorskip("ray", reason="genrelib[scale] extra (ray[data]) not installed")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")  # Ray Data's own, at import

N_CLIPS = 8


class InstrumentedMfcc(embed.MfccBackend):
    """The mfcc backend, logging ``init <pid>`` per model load and ``embed <pid>`` per clip to ``log``.

    With ``kill_after=k`` the process that makes the (k+1)-th model call of the whole job dies at once
    (``os._exit``, as an out-of-memory kill would), but only once: ``marker`` records that it happened.
    """

    name = "mfcc-instrumented"

    def __init__(self, log: str, kill_after: int | None = None, marker: str | None = None):
        self.log, self.kill_after, self.marker = Path(log), kill_after, Path(marker) if marker else None
        self._write("init")

    def _write(self, event: str) -> None:
        with open(self.log, "a") as handle:
            handle.write(f"{event} {os.getpid()}\n")

    def embed(self, y):
        due = self.kill_after is not None and len(events(self.log, "embed")) >= self.kill_after
        if due and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)
        self._write("embed")
        return super().embed(y)


def events(log: Path, kind: str) -> list[str]:
    """The pids logged for ``kind`` ("init" or "embed")."""
    if not Path(log).exists():
        return []
    return [line.split()[1] for line in Path(log).read_text().splitlines() if line.startswith(kind)]


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    embed.register_backend("mfcc-instrumented", "tests.test_scale:InstrumentedMfcc")
    scale.init_ray(num_cpus=2)
    yield
    ray.shutdown()
    embed.BACKENDS.pop("mfcc-instrumented", None)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """``N_CLIPS`` synthetic 3 s clips (22 050 Hz WAV) of different genres, plus their reference embeddings."""
    root = synthetic_gtzan(tmp_path_factory.mktemp("scale_gtzan"), per_genre=1, seconds=3.0, seed=3)
    return sorted(root.glob("genres/*/*.wav"))[:N_CLIPS]


@pytest.fixture(scope="module")
def reference(clips, tmp_path_factory) -> dict[str, np.ndarray]:
    """embed_dataset's mfcc embeddings of ``clips``, by track id: the single-machine truth."""
    index = pd.DataFrame({"track_id": [p.stem for p in clips], "path": [str(p) for p in clips]})
    frame = embed.embed_dataset(index, backend="mfcc", cache_dir_=tmp_path_factory.mktemp("ref"), progress=False)
    return dict(zip(frame["track_id"], embed.load_embeddings(frame)))


@pytest.fixture(scope="module")
def with_corrupt(clips, tmp_path_factory) -> list[Path]:
    """The clips with a corrupt file (random bytes named .wav) in the middle."""
    folder = tmp_path_factory.mktemp("corrupt")
    bad = folder / "broken.00000.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(20_000))
    middle = len(clips) // 2
    return [*clips[:middle], bad, *clips[middle:]]


@pytest.fixture(scope="module")
def ray_run(with_corrupt, tmp_path_factory):
    """One Ray job (2 model actors) over the clips with the corrupt one; its output folder and result."""
    output = tmp_path_factory.mktemp("ray_out") / "embeddings"
    log = tmp_path_factory.mktemp("log") / "events.log"
    with pytest.warns(GenrelibWarning, match="1 of 9 clips could not be embedded"):
        result = scale.embed_catalogue(with_corrupt, backend="mfcc-instrumented", backend_options={"log": str(log)},
                                       output=output, num_workers=2, batch_size=2, progress=False)
    return output, result, log


def assert_equal_to_reference(frame: pd.DataFrame, reference: dict) -> None:
    assert set(frame["item_id"]) == set(reference)
    for item_id, embedding in zip(frame["item_id"], frame["embedding"]):
        assert embedding.shape == reference[item_id].shape and embedding.dtype == np.float32
        # A Ray worker runs BLAS with one thread (Ray sets OMP_NUM_THREADS), the reference with the process's
        # pool: float32 sums may then differ by an ulp (1.5e-5 at |x| = 171), hence the relative term.
        np.testing.assert_allclose(embedding, reference[item_id], rtol=1e-6, atol=1e-5)


def raw_rows(output: Path) -> pd.DataFrame:
    """Every row of every Parquet file, without load_catalogue's de-duplication."""
    return pq.read_table(output, columns=["item_id", "error", "run_id"]).to_pandas()


# ------------------------------------------------------------------------------------ items and arguments

@pytest.mark.parametrize("make, context", [
    (lambda clips: clips, nullcontext()),
    (lambda clips: pd.DataFrame({"track_id": [p.stem for p in clips], "path": clips}), nullcontext()),
    (lambda clips: clips[0].parents[2], nullcontext()),
    (lambda clips: pd.DataFrame({"track_id": ["a"]}), pytest.raises(ParameterError, match="'path' column")),
    (lambda clips: [clips[0], clips[0]], pytest.raises(ParameterError, match="more than once")),
    (lambda clips: clips[0], pytest.raises(ParameterError, match="not a folder")),
    (lambda clips: [], pytest.raises(ParameterError, match="no audio clips")),
])
def test_catalogue_items(clips, make, context):
    with context:
        items = scale.catalogue_items(make(clips))
        assert list(items.columns) == ["item_id", "track_id", "genre", "path"]
        assert all(Path(p).is_absolute() and Path(p).exists() for p in items["path"])
        assert items["item_id"].is_unique


def test_folder_ids_are_relative_paths(clips):
    items = scale.catalogue_items(clips[0].parents[2])
    assert items["item_id"].iloc[0] == clips[0].relative_to(clips[0].parents[2]).with_suffix("").as_posix()


@pytest.mark.parametrize("options, match", [
    ({"engine": "spark"}, "engine='spark'"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"num_workers": -1}, "num_workers=-1"),
    ({"max_restarts": -1}, "max_restarts=-1"),
    ({"num_gpus_per_worker": -0.5}, "num_gpus_per_worker=-0.5"),
    ({"backend": "no-such-model"}, "backend='no-such-model'"),
])
def test_bad_arguments_are_refused_before_any_work(clips, tmp_path, options, match):
    with pytest.raises(ParameterError, match=match):
        scale.embed_catalogue(clips, **{"backend": "mfcc", "output": tmp_path / "out", **options})
    assert not (tmp_path / "out").exists()


def test_missing_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(GenrelibError, match=r"pip install 'genrelib\[scale\]'"):
        scale.require_ray()


def test_missing_pyarrow_says_how_to_install(clips, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(GenrelibError, match=r"need pyarrow.*pip install 'genrelib\[scale\]'"):
        scale.embed_catalogue(clips, backend="mfcc", output=tmp_path, engine="local")


# ---------------------------------------------------------------------------------- local engine (no Ray)

def test_local_engine_equals_embed_dataset_and_resumes(clips, reference, tmp_path):
    output = tmp_path / "local"
    first = scale.embed_catalogue(clips, backend="mfcc", output=output, engine="local", batch_size=3, progress=False)
    assert (first.attrs["n_new"], first.attrs["n_skipped"], first.attrs["n_errors"]) == (N_CLIPS, 0, 0)
    assert_equal_to_reference(scale.load_catalogue(output), reference)
    files = sorted(output.iterdir())
    second = scale.embed_catalogue(clips, backend="mfcc", output=output, engine="local", progress=False)
    assert (second.attrs["n_new"], second.attrs["n_skipped"]) == (0, N_CLIPS)
    assert sorted(output.iterdir()) == files


def test_changed_file_is_redone_and_latest_row_wins(clips, tmp_path):
    copies = [shutil.copy(p, tmp_path / p.name) for p in clips[:2]]
    output = tmp_path / "out"
    scale.embed_catalogue(copies, backend="mfcc", output=output, engine="local", progress=False)
    shutil.copy(clips[2], copies[0])  # same name, other audio: a new checksum
    again = scale.embed_catalogue(copies, backend="mfcc", output=output, engine="local", progress=False)
    assert again.set_index("item_id")["new"].to_dict() == {Path(copies[0]).stem: True, Path(copies[1]).stem: False}
    loaded = scale.load_catalogue(output).set_index("item_id")
    expected = embed.embed_audio(embed.audio.load(clips[2]), sr=16000, backend="mfcc")
    np.testing.assert_array_equal(loaded.loc[Path(copies[0]).stem, "embedding"], expected)
    assert len(raw_rows(output)) == 3 and len(loaded) == 2


def test_unreadable_parquet_file_is_moved_aside(clips, tmp_path):
    output = tmp_path / "out"
    scale.embed_catalogue(clips[:2], backend="mfcc", output=output, engine="local", progress=False)
    (output / "cut-short.parquet").write_bytes(b"PAR1 not really")
    with pytest.warns(GenrelibWarning, match="cut-short.parquet: unreadable Parquet file"):
        again = scale.embed_catalogue(clips[:2], backend="mfcc", output=output, engine="local", progress=False)
    assert again.attrs["n_new"] == 0 and (output / "cut-short.parquet.partial").exists()


def test_any_pyarrow_filesystem(clips, reference, tmp_path):
    remote = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())  # stands in for S3 / GCS
    scale.embed_catalogue(clips, backend="mfcc", output="bucket/embeddings", filesystem=remote, engine="local",
                          progress=False)
    assert (tmp_path / "bucket" / "embeddings").is_dir()
    assert_equal_to_reference(scale.load_catalogue("bucket/embeddings", filesystem=remote), reference)


class TwoStageMean(embed.MfccBackend):
    """A two-stage backend (``features`` / ``embed_patches``) whose model refuses a silent patch."""

    name = "two-stage-mean"
    embedding_dim = 2
    front_end_version = "raw-patches-1"
    patch_samples = 15360  # 0.96 s at 16 kHz

    def features(self, y):
        return y[: len(y) // self.patch_samples * self.patch_samples].reshape(-1, self.patch_samples)

    def embed_patches(self, patches):
        if np.any(np.all(patches == 0, axis=1)):
            raise GenrelibError("a silent patch")
        return np.stack([patches.mean(axis=1), patches.std(axis=1)], axis=1).astype(np.float32)

    def embed(self, y):
        return self.embed_patches(self.features(y))


def test_two_stage_backend_is_batched_and_a_bad_clip_is_isolated(clips, tmp_path):
    import soundfile as sf

    embed.register_backend("two-stage-mean", "tests.test_scale:TwoStageMean")
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    gap = tmp_path / "gap.wav"  # tone, 2 s of digital silence, tone: the third 0.96 s patch is all zeros
    sf.write(gap, np.concatenate([tone, np.zeros(32000), tone]).astype(np.float32), 16000)
    paths = [clips[0], gap, clips[1]]
    with pytest.warns(GenrelibWarning, match="1 of 3 clips could not be embedded"), \
            pytest.warns(GenrelibWarning, match="a batch of 3 clips failed in one forward pass"):
        scale.embed_catalogue(paths, backend="two-stage-mean", output=tmp_path / "out", engine="local",
                              progress=False)
    rows = scale.load_catalogue(tmp_path / "out", include_errors=True).set_index("item_id")
    assert "gap.wav: a silent patch" in rows.loc["gap", "error"]
    model = TwoStageMean()
    for path in (clips[0], clips[1]):
        expected = model.embed(embed.audio.load(path, sr=16000))
        np.testing.assert_allclose(rows.loc[path.stem, "embedding"], expected, rtol=0, atol=1e-6)


def test_a_failing_batch_warns_once_with_its_reason(clips, tmp_path):
    import soundfile as sf

    embed.register_backend("two-stage-mean", "tests.test_scale:TwoStageMean")
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    gaps = [tmp_path / f"gap{n}.wav" for n in range(2)]
    for gap in gaps:
        sf.write(gap, np.concatenate([tone, np.zeros(32000), tone]).astype(np.float32), 16000)
    with pytest.warns(GenrelibWarning) as record:  # one clip per batch: two batches fail in one forward pass
        scale.embed_catalogue([*gaps, clips[0]], backend="two-stage-mean", output=tmp_path / "out", engine="local",
                              batch_size=1, progress=False)
    fallbacks = [str(w.message) for w in record if "failed in one forward pass" in str(w.message)]
    assert len(fallbacks) == 1 and "GenrelibError: a silent patch" in fallbacks[0]
    assert any("2 of 3 clips could not be embedded" in str(w.message) for w in record)


def test_a_run_with_nothing_left_builds_no_network(clips, tmp_path, monkeypatch):
    output = tmp_path / "out"
    first = scale.embed_catalogue(clips[:1], backend="vggish", backend_options={"weights": "random"}, output=output,
                                  engine="local", progress=False)

    def no_network(**kwargs):
        raise AssertionError("the driver built the VGGish network")

    monkeypatch.setattr(vggish.backend, "VGGish", no_network)  # the name VGGishBackend builds its network with
    # Other option values than the first run's: no backend object of this process can serve the identity
    again = scale.embed_catalogue(clips[:1], backend="vggish", backend_options={"weights": "random", "batch_size": 8},
                                  output=output, engine="local", progress=False)
    assert (first.attrs["n_new"], again.attrs["n_new"], again.attrs["n_skipped"]) == (1, 0, 1)
    with pytest.raises(AssertionError, match="built the VGGish network"):  # with work left, the network is needed
        scale.embed_catalogue(clips[1:2], backend="vggish", backend_options={"weights": "random", "batch_size": 8},
                              output=output, engine="local", progress=False)


def test_vggish_two_stage_equals_embed_dataset(clips, tmp_path):
    options = {"weights": "random"}
    reference = embed.embed_dataset(clips[:3], backend=vggish.VGGishBackend(**options), cache_dir_=tmp_path / "ref",
                                    progress=False)
    scale.embed_catalogue(clips[:3], backend="vggish", backend_options=options, output=tmp_path / "out",
                          engine="local", batch_size=3, progress=False)
    assert_equal_to_reference(scale.load_catalogue(tmp_path / "out"),
                              dict(zip(reference["item_id"], embed.load_embeddings(reference))))


def test_overwrite_redoes_every_clip_and_the_new_rows_win(clips, tmp_path):
    output = tmp_path / "out"
    first = scale.embed_catalogue(clips[:2], backend="mfcc", output=output, engine="local", progress=False)
    again = scale.embed_catalogue(clips[:2], backend="mfcc", output=output, engine="local", overwrite=True,
                                  progress=False)
    assert again.attrs["n_new"] == 2 and len(raw_rows(output)) == 4
    assert set(scale.load_catalogue(output)["run_id"]) == {again.attrs["run_id"]} != {first.attrs["run_id"]}


# --------------------------------------------------------------------------------------------- Ray engine

def test_the_local_cluster_hashes_in_this_process(with_corrupt, monkeypatch):
    """On init_ray's own cluster the driver hashes (no Ray job and its start); the keys are the files' sha256."""
    import hashlib

    def no_job(*args, **kwargs):
        raise AssertionError("a Ray Data job was started to hash files on this machine's own cluster")

    monkeypatch.setattr(ray.data, "from_arrow", no_job)
    items = scale.catalogue_items(with_corrupt)
    hashed = embed_job._hash_clips(ray, pd.concat([items] * 20, ignore_index=True), 4)  # 180 rows: several threads
    assert hashed.num_rows == 20 * len(with_corrupt)
    by_path = dict(zip(hashed.column("path").to_pylist(), hashed.column("source_checksum").to_pylist()))
    assert by_path == {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in with_corrupt}
    assert hashed.column("path").to_pylist()[:len(with_corrupt)] == [str(p) for p in with_corrupt]  # in order
    assert set(hashed.column("error").to_pylist()) == {None}  # unreadable audio is decoding's error, not hashing's
    monkeypatch.setattr(scale.session, "_LOCAL_CLUSTER", set())  # a cluster elsewhere: hashing goes to its CPUs
    with pytest.raises(AssertionError, match="Ray Data job was started"):
        embed_job._hash_clips(ray, items, 4)


def test_pipeline_decodes_in_cpu_tasks_and_embeds_in_an_actor_pool(clips, capsys):
    plan = {"backend": "mfcc", "target": embed.BACKENDS["mfcc"], "options": {}, "run_id": "r", "sample_rate": 16000,
            "min_duration": 0.96, "batch_size": 4, "num_workers": 2, "num_gpus_per_worker": None,
            "max_restarts": 3, "max_task_retries": 3}
    hashed = embed_job._hash_clips(None, scale.catalogue_items(clips), 4)
    embed_job._ray_dataset(ray, hashed, **plan).explain()
    optimized = capsys.readouterr().out.split("Physical Plan (Optimized)")[1]
    # two operators, not fused into one: decoding never waits behind the model
    assert "ActorPoolMapOperator[MapBatches(EmbedWorker)]" in optimized
    assert "TaskPoolMapOperator[MapBatches(decode_batch)]" in optimized


@pytest.mark.parametrize("resources, workers, requested, cpus, gpus", [
    ({"CPU": 2.0}, 1, None, 1.0, 0.0),
    ({"CPU": 2.0}, 2, None, 0.5, 0.0),        # two actors must leave a CPU for decoding
    ({"CPU": 64.0, "GPU": 4.0}, 4, None, 1.0, 1.0),
    ({"CPU": 64.0, "GPU": 2.0}, 4, None, 1.0, 0.5),
    ({"CPU": 64.0, "GPU": 4.0}, 4, 0.0, 1.0, 0.0),
])
def test_actor_resources(resources, workers, requested, cpus, gpus):
    cluster = SimpleNamespace(cluster_resources=lambda: resources)
    assert embed_job._cpus_per_worker(cluster, workers) == cpus
    assert embed_job._gpus_per_worker(cluster, requested, workers) == gpus


def test_a_one_cpu_cluster_is_refused():
    with pytest.raises(ParameterError, match="at least 2"):
        embed_job._cpus_per_worker(SimpleNamespace(cluster_resources=lambda: {"CPU": 1.0}), 1)


def test_ray_output_equals_embed_dataset(ray_run, reference):
    output, result, _ = ray_run
    loaded = scale.load_catalogue(output)
    assert_equal_to_reference(loaded, reference)
    assert set(loaded["backend"]) == {"mfcc-instrumented"} and set(loaded["weights_checksum"]) == {"none"}
    assert (loaded["n_patches"] == [len(e) for e in loaded["embedding"]]).all()
    assert list(pq.read_schema(next(output.glob("*.parquet"))).names) == scale.OUTPUT_SCHEMA.names


def test_corrupt_file_becomes_an_error_row_and_the_others_complete(ray_run, with_corrupt):
    output, result, _ = ray_run
    assert (result.attrs["n_new"], result.attrs["n_errors"], result.attrs["n_missing"]) == (9, 1, 0)
    bad = result.set_index("item_id").loc["broken.00000"]
    assert "broken.00000.wav" in bad["error"] and "not a readable audio file" in bad["error"]
    assert bad["source_checksum"] is not None and bad["n_patches"] == 0
    errors = scale.load_catalogue(output, include_errors=True).set_index("item_id")
    assert errors.loc["broken.00000", "embedding"].shape == (0, 40)


def test_second_run_does_no_work(ray_run, with_corrupt):
    output, first, log = ray_run
    # Returns once the first job's actors are gone: one that the job no longer needed may still have been
    # loading its model when the job ended (on a busy machine), and its "init" belongs to the first run.
    scale.init_ray(num_cpus=2)
    files, calls, loads = sorted(output.iterdir()), len(events(log, "embed")), len(events(log, "init"))
    assert calls == N_CLIPS  # the corrupt file never reached the model
    with pytest.warns(GenrelibWarning, match="1 of 9 clips could not be embedded"):  # still reported
        again = scale.embed_catalogue(with_corrupt, backend="mfcc-instrumented", backend_options={"log": str(log)},
                                      output=output, num_workers=2, progress=False)
    assert (again.attrs["n_new"], again.attrs["n_skipped"]) == (0, N_CLIPS + 1)
    # no clip embedded, no model loaded anywhere, no file written
    assert len(events(log, "embed")) == calls and len(events(log, "init")) == loads
    assert sorted(output.iterdir()) == files
    assert (again["run_id"] == first["run_id"]).all()


def test_killed_actor_is_restarted_and_every_clip_lands_once(clips, reference, tmp_path):
    log, marker, output = tmp_path / "events.log", tmp_path / "killed", tmp_path / "out"
    options = {"log": str(log), "kill_after": 3, "marker": str(marker)}
    result = scale.embed_catalogue(clips, backend="mfcc-instrumented", backend_options=options, output=output,
                                   num_workers=1, batch_size=2, max_restarts=2, max_task_retries=2, progress=False)
    killed_pid = marker.read_text()
    assert killed_pid in events(log, "init")  # the model's actor process was the one killed ...
    restarted = [pid for pid in events(log, "init") if pid != killed_pid and pid != str(os.getpid())]
    assert restarted and set(events(log, "embed")) >= {killed_pid, *restarted}  # ... after work, and replaced
    rows = raw_rows(output)
    assert rows["item_id"].is_unique and len(rows) == N_CLIPS and rows["error"].isna().all()
    assert result.attrs["n_new"] == N_CLIPS
    assert_equal_to_reference(scale.load_catalogue(output), reference)


def test_without_restarts_the_same_kill_fails_the_job_and_a_rerun_completes_it(clips, tmp_path):
    log, marker, output = tmp_path / "events.log", tmp_path / "killed", tmp_path / "out"
    options = {"log": str(log), "kill_after": 4, "marker": str(marker)}
    with pytest.raises(GenrelibError, match="the Ray job failed"):
        scale.embed_catalogue(clips, backend="mfcc-instrumented", backend_options=options, output=output,
                              num_workers=1, batch_size=2, max_restarts=0, max_task_retries=0, progress=False)
    assert marker.exists()
    resumed = scale.embed_catalogue(clips, backend="mfcc-instrumented", backend_options=options, output=output,
                                    num_workers=1, batch_size=2, progress=False)
    assert resumed.attrs["n_skipped"] + resumed.attrs["n_new"] == N_CLIPS and raw_rows(output)["item_id"].is_unique


# ---------------------------------------------------------------------------------------------- augment

@pytest.fixture(scope="module")
def augment_case(tmp_path_factory):
    """Three training tracks of a synthetic set, the second one corrupt, augmented by augment_split (in this
    process) and by augment_catalogue (on Ray) into two caches."""
    root = synthetic_gtzan(tmp_path_factory.mktemp("augment_gtzan"), per_genre=2, seconds=3.0, seed=4)
    index = data.load_gtzan(root)
    split = data.split_random(index, test_size=0.5, valid_size=0.0, seed=0)
    train = sorted(split.train)[:3]
    broken = index.set_index("track_id").loc[train[1], "path"]
    Path(broken).write_bytes(np.random.default_rng(1).bytes(4000))  # same name, undecodable bytes
    caches = {name: tmp_path_factory.mktemp(name) for name in ("reference", "ray")}
    reference = augment.augment_split(index, split, track_ids=train, cache_dir=caches["reference"], n_jobs=1,
                                      progress=False, on_error="report")
    with pytest.warns(GenrelibWarning, match="1 source clips could not be augmented"):
        manifest = scale.augment_catalogue(index, split, track_ids=train, cache_dir=caches["ray"], progress=False)
    return {"index": index, "split": split, "train": train, "caches": caches, "reference": reference,
            "manifest": manifest}


def independent_augmentation(source: str, method: str, params: dict) -> np.ndarray:
    """What an augmented file must hold, by librosa and numpy rather than genrelib.augment: the method applied
    to the clip at 16 kHz with the manifest's parameters, looped to length (time stretch), then scaled into the
    16-bit range if louder."""
    import librosa

    y = audio.load(source, sr=16000)
    if method == "time_stretch":
        out = np.resize(librosa.effects.time_stretch(y, rate=params["rate"]), y.size)  # resize repeats: a loop
    elif method == "pitch_shift":
        out = librosa.effects.pitch_shift(y, sr=16000, n_steps=params["n_steps"])
    else:
        noise_std = np.sqrt(np.mean(y.astype(np.float64) ** 2) / 10 ** (params["snr_db"] / 10))
        out = y + np.random.default_rng(params["seed"]).standard_normal(y.size, dtype=np.float32) * np.float32(noise_std)
    return out * min(1.0, (32767 / 32768) / np.max(np.abs(out)))


def test_augment_catalogue_equals_augment_split(augment_case):
    import json

    import soundfile as sf

    reference, manifest, caches = augment_case["reference"], augment_case["manifest"], augment_case["caches"]
    same_root = manifest["path"].str.replace(str(caches["ray"]), str(caches["reference"]), regex=False)
    pd.testing.assert_frame_equal(manifest.assign(path=same_root), reference)
    augmented = manifest[(manifest["method"] != "original") & manifest["error"].isna()]
    assert len(augmented) == 6  # 2 decodable tracks x 3 methods
    sources = augment_case["index"].set_index("track_id")["path"]
    for row in augmented.itertuples():
        ours, sr = sf.read(row.path)
        theirs = sf.read(row.path.replace(str(caches["ray"]), str(caches["reference"])))[0]
        np.testing.assert_array_equal(ours, theirs)
        expected = independent_augmentation(sources[row.track_id], row.method, json.loads(row.params))
        assert sr == 16000 and ours.shape == expected.shape
        # 16-bit rounding: half a step of 1/32768, plus float32 noise
        np.testing.assert_allclose(ours, expected, rtol=0, atol=0.5 / 32768 + 1e-6)


def test_augment_catalogue_reports_a_corrupt_source_and_completes_the_others(augment_case):
    manifest, broken = augment_case["manifest"], augment_case["train"][1]
    errors = manifest.groupby("track_id")["error"].first()
    assert "not a readable audio file" in errors[broken] and errors.drop(broken).isna().all()
    assert manifest.attrs["n_errors"] == 1 and manifest.attrs["n_tasks"] == 3


def test_augment_catalogue_second_run_does_no_work(augment_case):
    case = augment_case
    with pytest.warns(GenrelibWarning, match="1 source clips"):
        again = scale.augment_catalogue(case["index"], case["split"], track_ids=case["train"],
                                        cache_dir=case["caches"]["ray"], progress=False)
    # only the corrupt source is tried again (it has no cached items); the others start no task
    assert again.attrs["n_tasks"] == 1
    pd.testing.assert_frame_equal(again, case["manifest"])


def test_augment_catalogue_refuses_test_tracks_before_any_work(augment_case, tmp_path):
    from genrelib import LeakageError

    case = augment_case
    with pytest.raises(LeakageError, match="must never be augmented"):
        scale.augment_catalogue(case["index"], case["split"], track_ids=[sorted(case["split"].test)[0]],
                                cache_dir=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


# -------------------------------------------------------------------------------------------------- CLI

def test_embed_cli_engine_flags():
    args = cli.parse_args(["embed", "--engine", "ray", "--address", "ray://head:10001", "--num-workers", "4"])
    assert (args.engine, args.address, args.num_workers) == ("ray", "ray://head:10001", 4)
    assert cli.parse_args(["embed"]).engine == "local"
    assert cli_types.ENGINES == scale.ENGINES


def test_embed_cli_ray_engine(clips, reference, tmp_path, capsys):
    output = tmp_path / "out"
    argv = ["embed", "--engine", "ray", "--backend", "mfcc", "--output-dir", str(output), "--quiet",
            *map(str, clips)]
    assert cli.main(argv) == 0
    assert f"{N_CLIPS} clips: {N_CLIPS} embedded now, 0 already in the output, 0 errors" in capsys.readouterr().out
    assert_equal_to_reference(scale.load_catalogue(output), reference)
    assert cli.main(argv) == 1  # nothing left to do: one clear line, non-zero exit
    assert f"nothing to do: all {N_CLIPS} clips are already in" in capsys.readouterr().out


def test_augment_cli_ray_engine_writes_the_same_manifest(tmp_path, capsys):
    root = synthetic_gtzan(tmp_path / "gtzan", per_genre=10, seconds=0.5, seed=5)  # the paper split needs 100
    manifests = {}
    for engine in ("local", "ray"):
        argv = ["augment", "--engine", engine, "--split", "paper", "--data", str(root), "--methods", "white_noise",
                "--n-jobs", "1", "--quiet", "--cache-dir", str(tmp_path / f"cache_{engine}"),
                "--output-dir", str(tmp_path / engine)]
        assert cli.main(argv) == 0
        manifest = pd.read_csv(tmp_path / engine / "augment_manifest_paper_seed0.csv")
        manifests[engine] = manifest.assign(path=manifest["path"].str.replace(f"cache_{engine}", "cache"))
    assert capsys.readouterr().out.count("genrelib augment: 65 augmented + 65 original training items") == 2
    pd.testing.assert_frame_equal(manifests["ray"], manifests["local"])
    assert (manifests["ray"]["method"] == "white_noise").sum() == 65
    assert not hasattr(cli.parse_args(["augment", "--engine", "ray"]), "num_workers")


def test_embed_cli_ray_engine_refuses_batch_size(clips, tmp_path, capsys):
    argv = ["embed", "--engine", "ray", "--backend", "mfcc", "--batch-size", "8", "--output-dir", str(tmp_path),
            str(clips[0])]
    assert cli.main(argv) == 2 and "--batch-size sets the forward pass of --engine local" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- measuring, projecting

class FakeClock:
    """A ``time`` stand-in whose ``perf_counter`` moves only when a stage under test says it took time."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def taking(self, seconds: float, function):
        def timed(*args, **kwargs):
            result = function(*args, **kwargs)
            self.now += seconds
            return result
        return timed


def test_stage_costs_time_each_stage(clips, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(throughput, "time", clock)  # only the measuring module reads this clock
    monkeypatch.setattr(throughput, "file_digest", clock.taking(0.001, throughput.file_digest))
    monkeypatch.setattr(audio, "load", clock.taking(0.2, audio.load))
    monkeypatch.setattr(embed.MfccBackend, "embed", clock.taking(0.3, embed.MfccBackend.embed))
    costs = scale.stage_costs(clips, backend="mfcc", n_clips=2).set_index("stage")
    assert list(costs.index) == ["start-up", "sha256", "decode + resample", "embed"]
    # start-up: the untimed first clip's decoding and embedding; then two clips through each stage
    np.testing.assert_allclose(costs["seconds"], [0.5, 0.002, 0.4, 0.6])
    np.testing.assert_allclose(costs["seconds_per_clip"], [np.nan, 0.001, 0.2, 0.3])
    np.testing.assert_allclose(costs["share"], [np.nan, 0.001 / 0.501, 0.2 / 0.501, 0.3 / 0.501])
    assert costs.attrs["patches_per_clip"] == 3  # 3 s clips, 0.96 s patches


def test_pipeline_stages_table_and_figure(clips):
    from genrelib import plots

    costs = pd.DataFrame({"stage": ["start-up", "sha256", "decode + resample", "embed"],
                          "seconds_per_clip": [np.nan, 0.001, 0.2, 0.3]})
    stages = scale.pipeline_stages(costs)
    assert list(stages["stage"].str.split().str[0]) == ["list", "sha256,", "decode,", "embed", "write"]
    np.testing.assert_allclose(stages["seconds_per_clip"], [np.nan, 0.001, 0.2, 0.3, np.nan])
    ax = plots.pipeline_stages(stages)
    texts = [t.get_text() for t in ax.texts]
    assert len(ax.patches) == 5 and {"1 ms / clip", "200 ms / clip", "300 ms / clip"} <= set(texts)
    plots.plt.close(ax.figure)


def test_project_catalogue_by_hand():
    table = scale.project_catalogue(cpu_seconds_per_patch=0.02, decode_cpu_seconds_per_clip=0.5,
                                    patches_per_clip=31, n_clips=1000, nodes=(1, 2), cpus_per_node=10)
    # 1000 clips x 31 patches x 0.02 CPU-s = 620 CPU-s; decoding alone 500 CPU-s
    np.testing.assert_allclose(table["cpu_nodes_hours"], [620 / 10 / 3600, 620 / 20 / 3600])
    np.testing.assert_allclose(table["gpu_nodes_hours_at_least"], [500 / 10 / 3600, 500 / 20 / 3600])
    np.testing.assert_allclose(table["node_hours"], [620 / 10 / 3600] * 2)
    with_start = scale.project_catalogue(cpu_seconds_per_patch=0.02, decode_cpu_seconds_per_clip=0.5,
                                         patches_per_clip=31, n_clips=1000, nodes=(1,), cpus_per_node=10,
                                         job_overhead_seconds=36)
    np.testing.assert_allclose(with_start["cpu_nodes_hours"], [(62 + 36) / 3600])
    assert table.attrs["kind"] == "projection" and scale.FMA_LARGE["n_clips"] == 106_574


def test_throughput_table_reports_the_median_of_repeats():
    frame = pd.DataFrame({"error": [None, None], "n_patches": [31, 31]})
    table = throughput._throughput_table({("Ray Data", 2): [(frame, 10.0), (frame, 30.0), (frame, 12.0)]})
    row = table.iloc[0]
    assert (row["seconds"], row["seconds_min"], row["seconds_max"]) == (12.0, 10.0, 30.0)
    assert (row["clips"], row["patches"]) == (2, 62) and row["patches_per_s"] == 62 / 12.0


@pytest.mark.parametrize("override", [{"cpu_seconds_per_patch": 0}, {"patches_per_clip": -1},
                                      {"nodes": (0,)}, {"n_clips": 1.5}, {"job_overhead_seconds": -1}])
def test_project_catalogue_refuses_bad_values(override):
    values = {"cpu_seconds_per_patch": 0.02, "decode_cpu_seconds_per_clip": 0.5, "patches_per_clip": 31, **override}
    with pytest.raises(ParameterError):
        scale.project_catalogue(**values)


def test_measure_throughput_counts_the_same_work_per_engine(clips, tmp_path):
    log = tmp_path / "events.log"
    table = scale.measure_throughput(clips[:3], backend="mfcc-instrumented", workers=(1,),
                                     backend_options={"log": str(log)})
    # Every run starts from an empty output: 3 clips embedded here, 3 + the one-clip overhead job on Ray
    here = [pid for pid in events(log, "embed") if pid == str(os.getpid())]
    assert len(here) == 3 and len(events(log, "embed")) - len(here) == 3 + 1
    assert list(table["engine"]) == ["embed_dataset (1 process)", "Ray Data"]
    assert (table["clips"] == 3).all() and (table["patches"] == 9).all()
    np.testing.assert_allclose(table["patches_per_s"], table["patches"] / table["seconds"])
    assert table.attrs["repeats"] == 1 and len(table.attrs["load_average"]) == 2
    assert table.attrs["ray_start_seconds"] is None and table.attrs["job_overhead_seconds"] > 0
    assert table.attrs["cluster_cpus"] == 2


QUIET_JOB = """
import sys
from genrelib import scale
scale.init_ray(num_cpus=2)
result = scale.embed_catalogue(sys.argv[1:-1], backend="mfcc", output=sys.argv[-1], num_workers=1, progress=False)
print(result.attrs["n_new"], result.attrs["n_errors"])
"""


def test_a_ray_job_prints_only_its_answer(clips, tmp_path):
    """In notebook 07 a student saw Ray 2.60's token-authentication notice and a core_worker.cc line about actor
    constructor arguments; a fresh process running one job on a new local cluster prints neither."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    done = subprocess.run([sys.executable, "-c", QUIET_JOB, *map(str, clips[:2]), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "0"]
    assert "Token authentication is enabled" not in done.stderr and "core_worker.cc" not in done.stderr, done.stderr


def test_describe_engine_benchmark_reads_the_committed_result(tmp_path):
    result = {"backend": "mfcc", "clips": 50, "repeats": 3, "when": "2026-12-04T01:51:50Z",
              "median_seconds": {"local": {"all": 20.0, "one": 4.0}, "ray": {"all": 30.0, "one": 12.0}},
              "ray_overhead": 0.5, "fixed_seconds": {"local": 3.5, "ray": 11.25},
              "ray_overhead_beyond_fixed": 0.0625, "clips_for_overhead_at_most_10_percent": None,
              "machine": {"cpus": 2, "cpu": {"model": "Test CPU", "avx2": True, "avx512f": False}}}
    path = tmp_path / "bench_engines_mfcc.json"
    path.write_text(json.dumps(result))
    text = scale.describe_engine_benchmark(path)
    for part in ("2026-12-04", "Test CPU AVX2", "2 CPUs", "backend mfcc", "medians of 3", "50 clips took 20.0 s",
                 "30.0 s on Ray (+50 %)", "4.0 s against 12.0 s", "Fixed cost 3.5 s against 11.2 s",
                 "+6 % per clip", "from no number of clips on"):
        assert part in text, part
    result["clips_for_overhead_at_most_10_percent"] = 624
    path.write_text(json.dumps(result))
    assert scale.describe_engine_benchmark(path).endswith("from 624 clips on.")
    assert "benchmarks/bench_engines.py" in scale.describe_engine_benchmark(tmp_path / "missing.json")
