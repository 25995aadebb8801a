"""genrelib.musicnn: the Keras 3 port against the original TF1 graphs, its front end, cache and errors.

The reference outputs come from ``tools/make_musicnn_reference.py``, which ran upstream's own
``define_model`` graphs and checkpoints (see that script for how the fixture was made).
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

from genrelib import embed, musicnn
from genrelib.errors import AudioError, GenrelibWarning, ParameterError, WeightsError

pytest.importorskip("musicnn", reason="needs the musicnn checkpoints: pip install --no-deps musicnn==0.1.0")

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "data" / "musicnn_reference.npz"
MINI_ROOT = Path(os.environ.get("GENRELIB_DATA") or HERE.parents[1] / "shared" / "data" / "gtzan_mini")
MODEL_LAYERS = [(name, layer) for name in musicnn.MODELS
                for layer in musicnn.LAYERS["vgg" if name.endswith("vgg") else "musicnn"]]


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


def real_clip(track: str) -> Path:
    genre = track.split(".")[0]
    paths = sorted((MINI_ROOT / "genres" / genre).glob(f"{track}.*"))
    if not paths:
        pytest.skip(f"real GTZAN clip {track} not found under {MINI_ROOT} (set GENRELIB_DATA)")
    return paths[0]


def reference_signal() -> np.ndarray:
    sys.path.insert(0, str(HERE.parent))
    from tools.make_musicnn_reference import reference_signal as signal

    return signal()


# ------------------------------------------------------------------------------------------ front end

def numpy_log_mel(y: np.ndarray) -> np.ndarray:
    """Independent float64 computation: centred zero-padded frames, periodic Hann, |rfft|^2, mel, log."""
    import librosa
    import scipy.signal

    padded = np.pad(y.astype(np.float64), 256)
    n_frames = 1 + len(y) // 256
    frames = np.stack([padded[i * 256: i * 256 + 512] for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames * scipy.signal.get_window("hann", 512), axis=1)) ** 2
    mel = power @ librosa.filters.mel(sr=16000, n_fft=512, n_mels=96).T.astype(np.float64)
    return np.log10(10000 * mel + 1)


def test_log_mel_matches_an_independent_computation():
    y = reference_signal()[:16000]
    got = musicnn.log_mel(y, sr=16000)
    assert got.dtype == np.float32 and got.shape == (1 + 16000 // 256, 96)
    np.testing.assert_allclose(got, numpy_log_mel(y), rtol=1e-4, atol=1e-4)


def test_log_mel_stays_float32_where_float16_would_overflow():
    t = np.arange(16000) / 16000
    loud = np.sign(np.sin(2 * np.pi * 110 * t)).astype(np.float32)  # full-scale square wave
    assert np.max(10000 * np.exp(numpy_log_mel(loud) * np.log(10))) > np.finfo(np.float16).max
    got = musicnn.log_mel(loud, sr=16000)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, numpy_log_mel(loud), rtol=1e-4, atol=1e-4)


def test_log_mel_resamples_other_rates():
    y = reference_signal()[:16000]
    import librosa

    y_22k = librosa.resample(y, orig_sr=16000, target_sr=22050)
    got = musicnn.log_mel(y_22k, sr=22050)
    assert got.shape == (1 + 16000 // 256, 96)
    # soxr round trip: same spectrogram up to resampling error at the band edge
    assert relative_error(got, musicnn.log_mel(y, sr=16000)) < 0.02


def test_front_end_reproduces_the_fixture_input(reference):
    patches = musicnn.to_patches(musicnn.log_mel(reference_signal(), sr=16000))
    np.testing.assert_allclose(patches[:2], reference["input"], atol=1e-5)


def test_patches_are_non_overlapping_from_frame_zero():
    spectrogram = np.arange(1876 * 96, dtype=np.float32).reshape(1876, 96)  # a 30 s clip's frame count
    patches = musicnn.to_patches(spectrogram)
    assert patches.shape == (10, 187, 96)
    np.testing.assert_array_equal(patches[3], spectrogram[3 * 187: 4 * 187])


@pytest.mark.parametrize("shape, context", [
    ((187, 96), nullcontext()),
    ((200, 95), pytest.raises(ParameterError)),
    ((0, 96), pytest.raises(ParameterError)),
    ((96,), pytest.raises(ParameterError)),
])
def test_to_patches_checks_shape(shape, context):
    with context:
        musicnn.to_patches(np.ones(shape, dtype=np.float32))


def test_short_clip_is_repeat_padded_with_a_warning():
    spectrogram = np.arange(50 * 96, dtype=np.float32).reshape(50, 96)
    with pytest.warns(GenrelibWarning, match="shorter than one"):
        patches = musicnn.to_patches(spectrogram)
    assert patches.shape == (1, 187, 96)
    np.testing.assert_array_equal(patches[0, 50:100], spectrogram)
    np.testing.assert_array_equal(patches[0, 150:187], spectrogram[:37])


@pytest.mark.parametrize("backend_name, dim", [("musicnn-mtt", 200), ("vgg-mtt", 256)])
def test_short_audio_embeds_to_one_row(backend_name, dim):
    y = reference_signal()[:8000]  # 0.5 s
    with pytest.warns(GenrelibWarning, match="repeated"):
        embedding = embed.embed_audio(y, sr=16000, backend=backend_name)
    assert embedding.shape == (1, dim) and np.all(np.isfinite(embedding))


# ------------------------------------------------------------------------------------------ parity

@pytest.mark.parametrize("name, layer", MODEL_LAYERS)
def test_every_exposed_layer_matches_the_original_graph(reference, name, layer):
    outputs = musicnn.load_model(name).predict_on_batch(reference["input"])
    expected = reference[f"{name}__{layer}"]
    assert outputs[layer].shape == expected.shape
    assert relative_error(np.asarray(outputs[layer]), expected) <= 1e-3
    np.testing.assert_allclose(outputs[layer], expected, atol=1e-3 * np.abs(expected).max())


@pytest.mark.mini
@pytest.mark.parametrize("track", ["metal.00003", "classical.00001"])
@pytest.mark.parametrize("backend_name, model", [
    ("musicnn-msd", "MSD_musicnn"), ("musicnn-mtt", "MTT_musicnn"), ("vgg-msd", "MSD_vgg"), ("vgg-mtt", "MTT_vgg"),
])
def test_embed_audio_on_real_clips_matches_the_original_graph(reference, track, backend_name, model):
    from genrelib import audio

    path = real_clip(track)
    y = audio.load(path, sr=None)  # native 22 050 Hz: embed_audio resamples, as a user's call would
    embedding = embed.embed_audio(y, sr=audio.info(path)["samplerate"], backend=backend_name)
    layer = "penultimate" if "musicnn" in model else "pool5"
    expected = reference[f"{track}__{model}__{layer}"]
    assert embedding.shape == expected.shape == (10, embed.get_backend(backend_name).embedding_dim)
    assert relative_error(embedding, expected) <= 0.02


@pytest.mark.mini
@pytest.mark.parametrize("track, expected", [
    ("metal.00003", {"rock", "fast", "techno", "loud", "metal"}),
    ("classical.00001", {"classical", "violin", "strings"}),
])
def test_top_tags_sanity_on_real_clips(reference, track, expected):
    from genrelib import audio

    y = audio.load(real_clip(track), sr=16000)
    tags = musicnn.top_tags(y, sr=16000, model="MTT_musicnn", top=len(expected))
    assert {tag for tag, _ in tags} == expected
    original = reference[f"{track}__MTT_musicnn__tags"].mean(axis=0)
    names = musicnn.labels("MTT_musicnn")
    np.testing.assert_allclose([p for _, p in tags], [original[names.index(t)] for t, _ in tags], atol=0.01)


# ------------------------------------------------------------------------------------------ backends

@pytest.mark.parametrize("registry, layer, name, dim, context", [
    ("musicnn-msd", None, "musicnn-msd", 200, nullcontext()),
    ("musicnn-msd", "max_pool", "musicnn-msd.max_pool", 753, nullcontext()),
    ("musicnn-mtt", "mean_pool", "musicnn-mtt.mean_pool", 753, nullcontext()),
    ("vgg-msd", None, "vgg-msd", 256, nullcontext()),
    ("vgg-mtt", "pool4", "vgg-mtt.pool4", 8448, nullcontext()),
    ("vgg-mtt", "penultimate", None, None, pytest.raises(ParameterError)),
    ("musicnn-mtt", "pool5", None, None, pytest.raises(ParameterError)),
])
def test_backend_protocol(registry, layer, name, dim, context):
    with context:
        backend = embed.get_backend(registry, **({"layer": layer} if layer else {}))
        assert (backend.name, backend.embedding_dim, backend.sample_rate) == (name, dim, 16000)
        assert backend.patch_seconds == backend.patch_hop_seconds == pytest.approx(2.992)
        assert backend.weights_checksum() == musicnn.KNOWN_CHECKSUMS[backend.model_name]
        y = reference_signal()
        rows = backend.embed(y)
        assert rows.shape == (2, dim) and rows.dtype == np.float32
        full = musicnn.predict(y, sr=16000, model=backend.model_name, layer=backend.layer)
        np.testing.assert_array_equal(rows, full.reshape(2, -1))


def test_embed_dataset_caches_musicnn_rows(tmp_path, monkeypatch):
    from genrelib import data

    root = data.synthetic_gtzan(tmp_path / "gtzan", per_genre=1, seconds=4.0, seed=0)
    index = data.load_gtzan(root).head(3)
    backend = musicnn.MusicnnBackend("MTT_musicnn")
    first = embed.embed_dataset(index, backend=backend, cache_dir_=tmp_path / "cache", progress=False)
    assert list(first["n_patches"]) == [1, 1, 1] and first["error"].isna().all()
    monkeypatch.setattr(backend, "embed", lambda y: pytest.fail("cached clips must not be embedded again"))
    again = embed.embed_dataset(index, backend=backend, cache_dir_=tmp_path / "cache", progress=False)
    for a, b in zip(embed.load_embeddings(first), embed.load_embeddings(again)):
        np.testing.assert_array_equal(a, b)


def test_embed_dataset_refuses_files_shorter_than_a_patch(tmp_path):
    import pandas as pd
    import soundfile as sf

    short = tmp_path / "short.wav"
    sf.write(short, reference_signal()[:32000], 16000)  # 2 s < 2.992 s
    index = pd.DataFrame({"track_id": ["short"], "path": [str(short)]})
    result = embed.embed_dataset(index, backend="musicnn-mtt", cache_dir_=tmp_path / "cache", progress=False,
                                 on_error="report")
    assert "short.wav" in result.loc[0, "error"] and "shorter than the required 2.992 s" in result.loc[0, "error"]


# ------------------------------------------------------------------------------------------ errors

def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "musicnn", None)  # import machinery: "not installed"
    with pytest.raises(WeightsError, match="pip install --no-deps musicnn==0.1.0"):
        musicnn.load_model("MSD_musicnn")
    with pytest.raises(WeightsError, match="pip install --no-deps musicnn==0.1.0"):
        musicnn.MusicnnBackend("MSD_vgg")


def test_missing_checkpoint_names_folder_and_install_command(tmp_path):
    with pytest.raises(WeightsError, match=rf"{tmp_path}.*missing .index.*pip install --no-deps musicnn==0.1.0"):
        musicnn.load_model("MTT_musicnn", checkpoint_dir=tmp_path)


def test_damaged_checkpoint_is_a_weights_error(tmp_path):
    (tmp_path / ".index").write_bytes(b"not a checkpoint index")
    (tmp_path / ".data-00000-of-00001").write_bytes(b"\0" * 64)
    with pytest.raises(WeightsError, match="not a readable TF checkpoint"), \
            pytest.warns(GenrelibWarning, match="differs from the one musicnn 0.1.0 ships"):
        musicnn.load_model("MTT_vgg", checkpoint_dir=tmp_path, cache=False)


def test_checkpoint_of_the_wrong_architecture_is_refused():
    with pytest.raises(WeightsError, match="missing from the checkpoint|has shape"):
        musicnn.model_from_checkpoint(musicnn.checkpoint_prefix("MTT_vgg"), name="MTT_musicnn")


@pytest.mark.parametrize("name, context", [
    ("MSD_musicnn", nullcontext()),
    ("MSD_musicnn_big", pytest.raises(ParameterError)),
    ("msd_musicnn", pytest.raises(ParameterError)),
])
def test_model_names_are_checked(name, context):
    with context:
        musicnn.checkpoint_prefix(name)


def test_silent_or_empty_audio_is_refused_by_embed_audio():
    with pytest.raises(AudioError):
        embed.embed_audio(np.zeros(16000, dtype=np.float32), sr=16000, backend="musicnn-msd")
    with pytest.raises(AudioError):
        embed.embed_audio(np.zeros(0, dtype=np.float32), sr=16000, backend="musicnn-msd")


# ------------------------------------------------------------------------------------------ weight cache

def test_weight_cache_round_trip_and_repair(tmp_path, monkeypatch, reference):
    monkeypatch.setenv("GENRELIB_CACHE", str(tmp_path))
    name = "MTT_vgg"
    expected = reference[f"{name}__pool5"]
    first = musicnn.load_model(name)
    path = musicnn.weights_path(name, musicnn.KNOWN_CHECKSUMS[name])
    assert path.is_file() and path.name.endswith(".weights.h5")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind

    # The second load reads the .h5: the checkpoint is not converted again. Each load is its own model.
    converted = musicnn.model_from_checkpoint
    monkeypatch.setattr(musicnn, "model_from_checkpoint", lambda *a, **k: pytest.fail("cache not used"))
    cached = musicnn.load_model(name)
    assert cached is not first
    assert relative_error(cached.predict_on_batch(reference["input"])["pool5"], expected) <= 1e-3

    # A damaged cache file is rebuilt from the checkpoint, with a warning, and works again.
    monkeypatch.setattr(musicnn, "model_from_checkpoint", converted)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.warns(GenrelibWarning, match="unreadable"):
        repaired = musicnn.load_model(name)
    assert relative_error(repaired.predict_on_batch(reference["input"])["pool5"], expected) <= 1e-3
    monkeypatch.setattr(musicnn, "model_from_checkpoint", lambda *a, **k: pytest.fail("repaired cache not used"))
    musicnn.load_model(name)


def test_fine_tuning_a_loaded_model_leaves_the_shared_one_alone(reference):
    y = reference_signal()
    before = musicnn.predict(y, sr=16000, model="MSD_vgg")
    own = musicnn.load_model("MSD_vgg")
    own.get_layer("block1_conv").kernel.assign(np.zeros(own.get_layer("block1_conv").kernel.shape))
    np.testing.assert_array_equal(musicnn.predict(y, sr=16000, model="MSD_vgg"), before)


# ------------------------------------------------------------------------------------------ CLI

def test_tags_cli_parses_defaults():
    from genrelib.cli import parse_args

    args = parse_args(["tags", "a.wav", "b.ogg"])
    assert (args.files, args.model, args.top) == (["a.wav", "b.ogg"], "MTT_musicnn", 5)
    with pytest.raises(SystemExit):
        parse_args(["tags", "a.wav", "--model", "MSD_musicnn_big"])
    with pytest.raises(SystemExit):
        parse_args(["tags", "a.wav", "--top", "0"])


def test_tags_cli_prints_top_tags_and_reports_bad_files(tmp_path, capsys):
    import soundfile as sf

    from genrelib.cli import main

    good = tmp_path / "signal.wav"
    sf.write(good, reference_signal(), 16000)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....not audio")
    assert main(["tags", str(good), str(bad), "--model", "MSD_musicnn", "--top", "3"]) == 1
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{good}: ")
    expected = musicnn.top_tags(reference_signal(), sr=16000, model="MSD_musicnn", top=3)
    assert lines[0] == f"{good}: " + ", ".join(f"{t} {p:.2f}" for t, p in expected)
    assert str(bad) in err and "1 of 2" in err


@pytest.mark.mini
def test_tags_cli_on_a_real_clip(capsys):
    from genrelib.cli import main

    path = real_clip("classical.00001")
    assert main(["tags", str(path), "--top", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: classical 0.7")
