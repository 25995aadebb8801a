"""embed_dataset: cache hits, cache keys, resume after an interruption, the per-file error report,
cross-clip batching, ``backend="auto"`` resolution, embed_file.

Uses the weight-free ``mfcc`` backend (fast) and, for the batched path, VGGish with random weights.
"""

from __future__ import annotations

import json
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from genrelib import audio, data, embed, yamnet
from genrelib.errors import GenrelibError, GenrelibWarning, ParameterError

from .conftest import ROOT


class CountingMfcc(embed.MfccBackend):
    """The mfcc backend, counting calls; raises KeyboardInterrupt on call number ``interrupt_at``."""

    def __init__(self, interrupt_at: int | None = None):
        self.calls = 0
        self.interrupt_at = interrupt_at

    def embed(self, y):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return super().embed(y)


@pytest.fixture(scope="module")
def clips_root(tmp_path_factory) -> Path:
    return data.synthetic_gtzan(tmp_path_factory.mktemp("gtzan"), per_genre=1, seconds=3.0, seed=0)


@pytest.fixture
def index(clips_root, tmp_path) -> pd.DataFrame:
    """A private copy of the 10 synthetic clips (tests may damage files)."""
    for path in (clips_root / "genres").rglob("*.wav"):
        target = tmp_path / "data" / path.relative_to(clips_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    return data.load_gtzan(tmp_path / "data")


def test_cache_hit_on_rerun(index, tmp_path):
    backend = CountingMfcc()
    first = embed.embed_dataset(index, backend=backend, cache_dir_=tmp_path / "cache", progress=False)
    assert backend.calls == 10 and first["error"].isna().all()
    assert (first["n_patches"] == 3).all()  # 3 s at 16 kHz: 298 frames -> 3 patches of 96
    for _, row in first.iterrows():
        with np.load(row["embedding_path"]) as stored:
            y = audio.load(row["path"], sr=16000)
            np.testing.assert_array_equal(stored["embedding"], embed.MfccBackend().embed(y))
            np.testing.assert_allclose(stored["timestamps"], [0.0, 0.96, 1.92], atol=1e-6)

    again = CountingMfcc()
    second = embed.embed_dataset(index, backend=again, cache_dir_=tmp_path / "cache", progress=False)
    assert again.calls == 0
    pd.testing.assert_frame_equal(first, second)
    forced = CountingMfcc()
    embed.embed_dataset(index, backend=forced, cache_dir_=tmp_path / "cache", overwrite=True, progress=False)
    assert forced.calls == 10


def test_cache_key_follows_audio_and_weights(index, tmp_path):
    cache = tmp_path / "cache"
    first = embed.embed_dataset(index, backend=CountingMfcc(), cache_dir_=cache, progress=False)
    changed = Path(index["path"][3])
    y, sr = sf.read(changed, dtype="float32")
    sf.write(changed, y * 0.5, sr)
    backend = CountingMfcc()
    second = embed.embed_dataset(index, backend=backend, cache_dir_=cache, progress=False)
    assert backend.calls == 1
    assert (first["embedding_path"] != second["embedding_path"]).tolist() == [i == 3 for i in range(10)]

    class OtherWeights(CountingMfcc):
        def weights_checksum(self):
            return "other"

    other = OtherWeights()
    third = embed.embed_dataset(index, backend=other, cache_dir_=cache, progress=False)
    assert other.calls == 10 and not set(third["embedding_path"]) & set(second["embedding_path"])


def test_resume_after_interruption(index, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        embed.embed_dataset(index, backend=CountingMfcc(interrupt_at=4), cache_dir_=cache, progress=False)
    files = sorted((cache / "mfcc").iterdir())
    assert len(files) == 3 and all(f.suffix == ".npz" and not f.name.startswith(".") for f in files)
    backend = CountingMfcc()
    result = embed.embed_dataset(index, backend=backend, cache_dir_=cache, progress=False)
    assert backend.calls == 7 and result["error"].isna().all()
    assert len(list((cache / "mfcc").iterdir())) == 10


def test_error_report_lists_bad_files_and_keeps_the_rest(index, tmp_path):
    corrupt = Path(index["path"][4])
    corrupt.write_bytes(b"RIFF\x00\x00garbage" * 100)
    short = Path(index["path"][7])
    sf.write(short, np.full(11025, 0.1, np.float32), 22050)  # 0.5 s: shorter than one patch
    cache = tmp_path / "cache"
    with pytest.raises(GenrelibError) as caught:
        embed.embed_dataset(index, backend=CountingMfcc(), cache_dir_=cache, progress=False)
    message = str(caught.value)
    assert message.startswith("2 of 10 clips could not be embedded")
    assert f"{corrupt}: not a readable audio file" in message and f"{short}: clip lasts 0.500 s" in message
    backend = CountingMfcc()
    report = embed.embed_dataset(index, backend=backend, cache_dir_=cache, progress=False, on_error="report")
    assert backend.calls == 0  # the 8 good clips were cached by the failed run
    assert report["error"].notna().tolist() == [i in (4, 7) for i in range(10)]
    assert report["embedding_path"].isna().sum() == 2 and (report["n_patches"] == 0).sum() == 2


def test_list_of_paths_and_bad_arguments(index, tmp_path):
    paths = list(index["path"][:2])
    result = embed.embed_dataset(paths, backend=CountingMfcc(), cache_dir_=tmp_path, progress=False)
    assert result["item_id"].tolist() == [Path(p).stem for p in paths]
    with pytest.raises(ParameterError, match="on_error='ignore'"):
        embed.embed_dataset(index, backend=CountingMfcc(), on_error="ignore")
    with pytest.raises(ParameterError, match="'path' column"):
        embed.embed_dataset(pd.DataFrame({"track_id": ["a"]}), backend=CountingMfcc())


def test_batched_path_matches_per_clip_embedding(tmp_path):
    """Random-weight VGGish: patches of several clips share forward passes, rows never mix."""
    from genrelib import vggish

    rng = np.random.default_rng(0)
    paths = []
    for i, seconds in enumerate((1.5, 3.2, 10.0, 7.0)):  # 1, 3, 10 and 7 patches
        paths.append(tmp_path / f"clip{i}.wav")
        sf.write(paths[-1], rng.uniform(-0.3, 0.3, int(seconds * 16000)).astype(np.float32), 16000)
    backend = vggish.VGGishBackend(weights="random", batch_size=16, jit_compile=True)
    calls = []
    original = backend.embed_patches
    backend.embed_patches = lambda patches: calls.append(len(patches)) or original(patches)
    result = embed.embed_dataset(paths, backend=backend, cache_dir_=tmp_path / "cache", progress=False)
    assert calls == [16, 5]  # 21 patches: one full batch across clips 0-2, then the rest
    assert result["n_patches"].tolist() == [1, 3, 10, 7]
    for path, stored in zip(paths, embed.load_embeddings(result)):
        expected = backend.model.predict(vggish.log_mel_patches(audio.load(path), sr=16000)[..., None], verbose=0)
        np.testing.assert_allclose(stored, expected, atol=1e-3)


def test_auto_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRELIB_CACHE", str(tmp_path))
    monkeypatch.setattr(embed, "_AUTO_ANNOUNCED", set())  # as in a fresh process
    how = r"genrelib weights vggish --download"
    # genrelib.musicnn ships with the package, so without VGGish weights the first preference is taken ...
    with pytest.warns(GenrelibWarning, match=rf"backend='auto' uses 'musicnn-msd'.*{how}"):
        assert embed.resolve_backend("auto") == "musicnn-msd"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert embed.resolve_backend("auto") == "musicnn-msd"  # ... and said once, not on every call
    # A preferred backend whose module is missing is skipped; with none left, the weight-free baseline.
    monkeypatch.setitem(embed.BACKENDS, "musicnn-msd", "genrelib.no_such_module:factory")
    with pytest.warns(GenrelibWarning, match=rf"uses 'vgg-msd'.*{how}"):
        assert embed.resolve_backend("auto") == "vgg-msd"
    # YAMNet comes last, and only with weights to convert (here: no converted cache, no TF-Lite file).
    for name in embed.OFFLINE_PREFERENCE[:-1]:
        monkeypatch.setitem(embed.BACKENDS, name, "no_such_package.module:factory")
    monkeypatch.setattr(yamnet, "default_tflite_path", lambda: tmp_path / "yamnet.tflite")
    with pytest.warns(GenrelibWarning, match=rf"uses 'yamnet'.*{how}"):
        assert embed.resolve_backend("auto") == "yamnet"
    monkeypatch.setattr(yamnet, "default_tflite_path", lambda: None)
    for name in embed.OFFLINE_PREFERENCE:
        monkeypatch.setitem(embed.BACKENDS, name, "no_such_package.module:factory")
    with pytest.warns(GenrelibWarning, match=rf"uses 'mfcc' \(the weight-free baseline.*{how}"):
        assert embed.resolve_backend("auto") == "mfcc"
    weights = tmp_path / "weights" / "vggish.weights.h5"
    weights.parent.mkdir()
    weights.write_bytes(b"converted")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert embed.resolve_backend("auto") == "vggish"
    assert embed.resolve_backend("mfcc") == "mfcc"
    with pytest.raises(ParameterError, match="backend='nope'"):
        embed.resolve_backend("nope")
    monkeypatch.setitem(embed.BACKENDS, "ghost", "genrelib.no_such_module:factory")
    with pytest.raises(ParameterError, match="cannot be imported"):
        embed.get_backend("ghost")


def test_auto_prefers_backends_in_the_order_of_their_measured_accuracy():
    measured = json.loads((ROOT / "results" / "backends.json").read_text())["results"]
    # One row per backend: its first (reported) layer, as auto uses it.
    first_rows = {}
    for row in measured:
        first_rows.setdefault(row["backend"], row)
    ranked = sorted((row for name, row in first_rows.items() if name in embed.OFFLINE_PREFERENCE),
                    key=lambda row: (-row["accuracy_mean"], row["accuracy_std"]))
    assert tuple(row["backend"] for row in ranked) == embed.OFFLINE_PREFERENCE
    assert first_rows["mfcc"]["accuracy_mean"] < ranked[-1]["accuracy_mean"]  # the fallback is the weakest


def test_embed_file_writes_once(index, tmp_path):
    path = Path(index["path"][0])
    backend = CountingMfcc()
    target = embed.embed_file(path, backend=backend, output_dir=tmp_path)
    assert target == tmp_path / f"{path.stem}.npz" and backend.calls == 1
    embed.embed_file(path, backend=backend, output_dir=tmp_path)
    assert backend.calls == 1
    with np.load(target) as stored:
        assert stored["embedding"].shape == (3, 40)


def test_cli_embed(index, tmp_path, capsys):
    from genrelib.cli import main, parse_args

    args = parse_args(["embed", "--backend", "mfcc", "--data", str(tmp_path / "data"), "--output-dir",
                       str(tmp_path / "out"), "--quiet"])
    assert (args.backend, args.files, args.overwrite) == ("mfcc", [], False)
    assert main(["embed", "--backend", "mfcc", "--data", str(tmp_path / "data"), "--output-dir",
                 str(tmp_path / "out"), "--quiet"]) == 0
    assert "10 of 10 clips embedded with backend mfcc" in capsys.readouterr().out
    assert len(list((tmp_path / "out" / "mfcc").glob("*.npz"))) == 10
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    assert main(["embed", "--backend", "mfcc", index["path"][0], str(broken), "--output-dir",
                 str(tmp_path / "out"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "1 of 2 clips embedded" in captured.out and f"genrelib embed: error: {broken}" in captured.err
    assert main(["embed", "--backend", "nope", index["path"][0]]) == 2
    assert "backend='nope' must be one of" in capsys.readouterr().err


def test_clip_means_average_patches():
    embeddings = [np.array([[1.0, 2.0], [3.0, 6.0]]), np.array([[5.0, 5.0]])]
    np.testing.assert_array_equal(embed.clip_means(embeddings), [[2.0, 4.0], [5.0, 5.0]])


@pytest.mark.parametrize("embeddings, context", [
    ([np.ones((3, 4)), np.ones((1, 4))], nullcontext()),
    ([], pytest.raises(ParameterError)),
    ([np.ones((3, 4)), np.ones((3, 5))], pytest.raises(ParameterError)),
    ([np.ones(4)], pytest.raises(ParameterError)),
    ([np.ones((0, 4))], pytest.raises(ParameterError)),
])
def test_clip_means_checks_shapes(embeddings, context):
    with context:
        embed.clip_means(embeddings)


def test_project_clips_separates_distinct_groups():
    rng = np.random.default_rng(0)
    groups = [rng.normal(loc, 0.1, size=(5, 8)) for loc in (0.0, 3.0) for _ in range(6)]
    points = embed.project_clips(groups, method="pca")
    assert points.shape == (12, 2)
    first, second = points[:6, 0], points[6:, 0]
    assert max(first) < min(second) or max(second) < min(first)  # the groups do not overlap on PC 1
    assert embed.project_clips(groups, method="tsne", seed=0).shape == (12, 2)
    with pytest.raises(ParameterError, match="at least 3 clips"):
        embed.project_clips(groups[:2])
    with pytest.raises(ParameterError, match="method='umap'"):
        embed.project_clips(groups, method="umap")


# ------------------------------------------------------------------------------------ describe_backend

SHARED_PCA = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "vggish" / "vggish_pca_params.npz"


def _vggish_pca_folder(tmp_path: Path) -> Path:
    import shutil

    from genrelib import vggish

    if not SHARED_PCA.is_file():
        pytest.skip(f"{SHARED_PCA}: the shared VGGish PCA file is absent")
    shutil.copy(SHARED_PCA, vggish.pca_params_path(tmp_path))
    return tmp_path


@pytest.mark.parametrize("module_name, factory_name, network, options", [
    ("genrelib.vggish", "VGGishBackend", "VGGish", {"weights": "random", "seed": 2}),
    ("genrelib.vggish", "VGGishBackend", "VGGish", {"weights": "random", "postprocess": True}),
    ("genrelib.yamnet", "YAMNetBackend", "YAMNet", {"weights": "random", "seed": 5}),
])
def test_describe_backend_gives_the_built_backends_identity_without_building_it(module_name, factory_name, network,
                                                                                options, tmp_path, monkeypatch):
    import importlib

    module = importlib.import_module(module_name)
    if options.get("postprocess"):
        options = {**options, "folder": _vggish_pca_folder(tmp_path)}
    factory = getattr(module, factory_name)
    expected = embed.BackendInfo.of(factory(**options))
    assert expected.weights_checksum.startswith(f"random-glorot-seed{options.get('seed', 0)}")
    assert ("+pca:" in expected.weights_checksum) == bool(options.get("postprocess"))

    def no_network(**kwargs):
        raise AssertionError("the network was built")

    monkeypatch.setattr(module, network, no_network)
    assert factory.describe(**options) == expected
    # batch_size does not enter the identity; another value has no cached instance to read it from
    assert embed.describe_backend(factory.name, **options, batch_size=3) == expected


def test_describe_backend_of_a_backend_without_describe_reads_the_object():
    info = embed.describe_backend("mfcc")
    assert info == embed.BackendInfo(name="mfcc", weights_checksum="none", front_end_version="mfcc-1",
                                     sample_rate=16000, patch_seconds=0.96)


def test_describe_backend_refuses_missing_weights_as_the_backend_does(tmp_path):
    from genrelib import vggish
    from genrelib.errors import WeightsError

    missing = tmp_path / "absent.weights.h5"
    with pytest.raises(WeightsError, match="no converted VGGish weights at"):
        vggish.VGGishBackend(weights=missing)
    with pytest.raises(WeightsError, match="no converted VGGish weights at"):
        embed.describe_backend("vggish", weights=missing)
