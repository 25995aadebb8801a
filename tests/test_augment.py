"""genrelib.augment: the three methods against independent references, the cached dataset stage, the
leakage guard, Fig 2 and the ``genrelib augment`` verb."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import genrelib
from genrelib import augment, data, plots
from genrelib.cli import main, parse_args
from genrelib.config import GENRES, AugmentConfig
from genrelib.errors import AudioError, DataError, LeakageError, ParameterError
from genrelib.storage import file_digest

SR = 16000


def tone(frequency: float, *, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency(y: np.ndarray, *, sr: int = SR) -> float:
    """Frequency of the largest magnitude bin, zero-padded to 0.25 Hz resolution (numpy only)."""
    n_fft = 4 * sr
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size), n=n_fft))
    return float(np.fft.rfftfreq(n_fft, d=1 / sr)[np.argmax(spectrum)])


def envelope_rate(y: np.ndarray, *, sr: int = SR) -> float:
    """Frequency [Hz] of the strongest periodicity of the RMS envelope (the tempo of a pulse train)."""
    hop = 160
    rms = librosa.feature.rms(y=y, frame_length=400, hop_length=hop)[0]
    rms = rms - rms.mean()
    n_fft = 16 * rms.size
    spectrum = np.abs(np.fft.rfft(rms * np.hanning(rms.size), n=n_fft))
    return float(np.fft.rfftfreq(n_fft, d=hop / sr)[np.argmax(spectrum)])


def pulses(*, rate_hz: float, carrier: float = 440.0, seconds: float = 4.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    gate = (np.mod(t * rate_hz, 1.0) < 0.3).astype(np.float64)
    return (0.5 * gate * np.sin(2 * np.pi * carrier * t)).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))


# ------------------------------------------------------------------------------------ pitch_shift

@pytest.mark.parametrize("n_steps", [2.0, -2.0, 0.5, 12.0])
def test_pitch_shift_moves_a_sine_by_the_equal_tempered_ratio(n_steps):
    shifted = augment.pitch_shift(tone(440.0), sr=SR, n_steps=n_steps)
    expected = 440.0 * 2 ** (n_steps / 12)
    assert peak_frequency(shifted) == pytest.approx(expected, rel=0.01)


def test_pitch_shift_keeps_length_dtype_and_matches_librosa():
    y = tone(440.0, seconds=1.3).astype(np.float64)  # float64 in -> float32 out
    shifted = augment.pitch_shift(y, sr=SR, n_steps=1.5)
    assert shifted.dtype == np.float32 and shifted.shape == y.shape
    reference = librosa.effects.pitch_shift(y.astype(np.float32), sr=SR, n_steps=1.5)
    np.testing.assert_allclose(shifted, reference, atol=1e-6)


# ----------------------------------------------------------------------------------- time_stretch

@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_keeps_length_and_pitch_and_changes_tempo(rate):
    y = pulses(rate_hz=4.0)
    stretched = augment.time_stretch(y, rate=rate)
    assert stretched.dtype == np.float32 and stretched.shape == y.shape
    assert peak_frequency(stretched) == pytest.approx(440.0, rel=0.01)
    assert envelope_rate(y) == pytest.approx(4.0, rel=0.03)
    assert envelope_rate(stretched) == pytest.approx(4.0 * rate, rel=0.03)


def test_time_stretch_is_librosa_cut_or_looped_to_length():
    y = pulses(rate_hz=3.0, seconds=2.0)
    slow = augment.time_stretch(y, rate=0.8)
    np.testing.assert_allclose(slow, librosa.effects.time_stretch(y, rate=0.8)[: y.size], atol=1e-6)
    fast_reference = librosa.effects.time_stretch(y, rate=1.25)
    short = fast_reference.size
    looped = augment.time_stretch(y, rate=1.25)
    padded = augment.time_stretch(y, rate=1.25, pad_mode="constant")
    np.testing.assert_allclose(looped[:short], fast_reference, atol=1e-6)
    np.testing.assert_array_equal(looped[short:], looped[: y.size - short])
    assert not np.any(padded[short:])


# -------------------------------------------------------------------------------------- white noise

@pytest.mark.parametrize("target", [0.0, 15.0, 30.0])
def test_white_noise_has_the_requested_snr(target):
    y = pulses(rate_hz=2.0, seconds=2.0)
    noisy = augment.add_white_noise(y, snr_db=target, rng=np.random.default_rng(3))
    assert noisy.dtype == np.float32 and noisy.shape == y.shape
    assert snr_db(y, noisy) == pytest.approx(target, abs=0.5)


def test_white_noise_is_white():
    y = tone(440.0, seconds=2.0)
    noise = augment.add_white_noise(y, snr_db=0.0, rng=1).astype(np.float64) - y
    power = np.abs(np.fft.rfft(noise)) ** 2
    low, high = power[100:8000].mean(), power[8000:15900].mean()  # lower and upper half of the band
    assert low / high == pytest.approx(1.0, rel=0.1)


def test_white_noise_same_seed_same_bytes_other_seed_other_noise():
    y = tone(220.0)
    first = augment.add_white_noise(y, snr_db=20.0, rng=7)
    again = augment.add_white_noise(y, snr_db=20.0, rng=np.random.default_rng(7))
    other = augment.add_white_noise(y, snr_db=20.0, rng=8)
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()
    assert abs(np.corrcoef(first - y, other - y)[0, 1]) < 0.05


def test_white_noise_on_silence_is_a_clear_error_not_nan():
    with pytest.raises(AudioError, match="silent"):
        augment.add_white_noise(np.zeros(SR, dtype=np.float32), snr_db=20.0, rng=0)


def test_phase_vocoder_methods_accept_silence():
    silence = np.zeros(SR, dtype=np.float32)
    assert not np.any(augment.time_stretch(silence, rate=1.1))
    assert not np.any(augment.pitch_shift(silence, sr=SR, n_steps=1))


# ---------------------------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("call, expectation", [
    (lambda y: augment.time_stretch(y, rate=1.1), nullcontext()),
    (lambda y: augment.time_stretch(y, rate=0), pytest.raises(ParameterError, match="rate=0")),
    (lambda y: augment.time_stretch(y, rate=-1.0), pytest.raises(ParameterError, match="rate=-1.0")),
    (lambda y: augment.time_stretch(y, rate=float("nan")), pytest.raises(ParameterError, match="rate=nan")),
    (lambda y: augment.time_stretch(y, rate="1.1"), pytest.raises(ParameterError, match="rate='1.1'")),
    (lambda y: augment.time_stretch(y, rate=1.1, pad_mode="reflect"), pytest.raises(ParameterError, match="pad_mode")),
    (lambda y: augment.pitch_shift(y, sr=SR, n_steps=-2), nullcontext()),
    (lambda y: augment.pitch_shift(y, sr=0, n_steps=1), pytest.raises(ParameterError, match="sr=0")),
    (lambda y: augment.pitch_shift(y, sr=SR, n_steps=float("inf")), pytest.raises(ParameterError, match="n_steps=inf")),
    (lambda y: augment.add_white_noise(y, snr_db=10, rng=0), nullcontext()),
    (lambda y: augment.add_white_noise(y, snr_db=None, rng=0), pytest.raises(ParameterError, match="snr_db=None")),
    (lambda y: augment.add_white_noise(y, snr_db=10, rng="seed"), pytest.raises(ParameterError, match="rng='seed'")),
    (lambda y: augment.add_white_noise(y, snr_db=10, rng=-1), pytest.raises(ParameterError, match="rng=-1")),
    (lambda y: augment.time_stretch(y[:1000], rate=1.1), pytest.raises(AudioError, match="1000 samples")),
    (lambda y: augment.pitch_shift(np.where(y > 0.4, np.nan, y), sr=SR, n_steps=1),
     pytest.raises(AudioError, match="NaN")),
    (lambda y: augment.time_stretch(y.astype(np.int16), rate=1.1), pytest.raises(ParameterError, match="floating")),
])
def test_arguments_are_checked(call, expectation):
    with expectation:
        call(tone(440.0))


def test_methods_are_keyword_only():
    with pytest.raises(TypeError):
        augment.time_stretch(tone(440.0), 1.1)  # noqa: the point is the positional call


def test_apply_method_dispatches_with_manifest_params():
    y = tone(330.0)
    assert np.array_equal(augment.apply_method(y, sr=SR, method="pitch_shift", params={"n_steps": 1.0}),
                          augment.pitch_shift(y, sr=SR, n_steps=1.0))
    assert np.array_equal(augment.apply_method(y, sr=SR, method="white_noise", params={"snr_db": 20, "seed": 4}),
                          augment.add_white_noise(y, snr_db=20, rng=4))
    with pytest.raises(ParameterError, match="needs 'rate'"):
        augment.apply_method(y, sr=SR, method="time_stretch", params={"n_steps": 1})
    with pytest.raises(ParameterError, match="method='reverb'"):
        augment.apply_method(y, sr=SR, method="reverb", params={})


def test_draw_params_stay_in_the_configured_range_and_repeat():
    config = AugmentConfig(stretch_rate_range=(0.9, 1.1))
    rates = [augment.draw_params("time_stretch", config=config, rng=seed)["rate"] for seed in range(200)]
    assert 0.9 <= min(rates) and max(rates) <= 1.1 and np.std(rates) > 0.04
    assert augment.draw_params("white_noise", rng=5) == augment.draw_params("white_noise", rng=5)
    assert set(augment.draw_params("white_noise", rng=5)) == {"snr_db", "seed"}


def test_method_costs_times_every_method():
    costs = augment.method_costs(tone(440.0, seconds=2.0), sr=SR, repeats=1)
    assert list(costs["method"]) == [m for m in augment.METHODS for _ in range(2)]
    assert (costs["milliseconds"] > 0).all() and (costs["duration"] == 2.0).all()
    config = AugmentConfig()
    ends = [(keyword, value) for keyword, field_name in augment.METHODS.values()
            for value in getattr(config, field_name)]
    assert [json.loads(p) for p in costs["params"]] == [
        {keyword: value, **({"seed": 0} if keyword == "snr_db" else {})} for keyword, value in ends]


def test_method_costs_reports_the_best_repeat_and_leaves_the_warm_up_out(monkeypatch):
    """With a clock that moves only inside the method calls: repeats take 3, 1 and 2 units, the warm-up 1000."""
    clock = {"now": 0.0, "calls": 0}
    y = tone(440.0, seconds=2.0)

    def costed_method(signal, *, sr, method, params):
        if signal.size < y.size:
            clock["now"] += 1000.0  # the warm-up call, on a short excerpt
        else:
            clock["calls"] += 1
            clock["now"] += (3, 1, 2)[(clock["calls"] - 1) % 3] * (1 + list(augment.METHODS).index(method))
        return signal

    monkeypatch.setattr(augment, "apply_method", costed_method)
    monkeypatch.setattr(augment, "time", type("Clock", (), {"perf_counter": staticmethod(lambda: clock["now"])}))
    costs = augment.method_costs(y, sr=SR, repeats=3)
    unit = np.repeat([1.0, 2.0, 3.0], 2)  # seconds of the best repeat, per method, at both ends of its range
    np.testing.assert_allclose(costs["milliseconds"], 1000 * unit)
    np.testing.assert_allclose(costs["x_realtime"], 2.0 / unit)


# ------------------------------------------------------------------------------- dataset stage

@pytest.fixture(scope="module")
def gtzan(tmp_path_factory):
    """A synthetic GTZAN of 10 two-second clips per genre (22 050 Hz WAV) and its index."""
    root = data.synthetic_gtzan(tmp_path_factory.mktemp("gtzan"), per_genre=10, seconds=2.0, seed=1)
    return root, data.load_gtzan(root)


@pytest.fixture(scope="module")
def small_split(gtzan):
    """Training: track 00000 of each genre; validation 00001; test 00002."""
    _, index = gtzan
    side = {n: tuple(f"{g}.{n:05d}" for g in GENRES) for n in range(3)}
    return data.Split(side[0], side[1], side[2], protocol="unit-test")


@pytest.fixture(scope="module")
def done(gtzan, small_split, tmp_path_factory):
    """One complete parallel run: (cache dir, manifest, digest of every cached file)."""
    _, index = gtzan
    cache = tmp_path_factory.mktemp("augment-cache")
    manifest = augment.augment_split(index, small_split, cache_dir=cache, seed=0, n_jobs=2, progress=False)
    return cache, manifest, cache_digests(cache)


def cache_digests(cache: Path) -> dict[str, str]:
    return {str(p.relative_to(cache)): file_digest(p) for p in sorted(Path(cache).rglob("*")) if p.is_file()}


def test_manifest_lists_training_items_only(done, small_split):
    _, manifest, digests = done
    assert set(manifest["track_id"]) == set(small_split.train)
    assert manifest["item_id"].is_unique
    assert len(manifest) == len(small_split.train) * 4  # original + 3 methods
    assert manifest.groupby("method").size().to_dict() == {m: 10 for m in ("original", *augment.METHODS)}
    assert {"item_id", "track_id", "genre", "method", "params", "seed", "path"} <= set(manifest.columns)
    assert manifest.loc[manifest["item_id"] == "blues.00000+pitch_shift#0", "track_id"].item() == "blues.00000"
    assert (manifest["genre"] == manifest["track_id"].str.split(".").str[0]).all()
    assert manifest["error"].isna().all() and (manifest["protocol"] == "unit-test").all()
    assert len(digests) == 30 and not any(name.startswith(".") for name in digests)  # no temporaries left


def test_originals_point_at_the_source_files(done, gtzan):
    _, index = gtzan
    _, manifest, _ = done
    originals = manifest[manifest["method"] == "original"].set_index("track_id")
    sources = index.set_index("track_id").loc[originals.index, "path"]
    assert (originals["item_id"] == originals.index).all()
    assert list(originals["path"]) == [str(p) for p in sources]
    assert (originals["params"] == "{}").all()


def test_cached_files_are_16k_flac_holding_the_public_functions_output(done, gtzan):
    _, index = gtzan
    _, manifest, _ = done
    for row in manifest[manifest["track_id"] == "metal.00000"].itertuples():
        if row.method == "original":
            continue
        meta = sf.info(row.path)
        assert (meta.samplerate, meta.channels, meta.format, meta.subtype) == (16000, 1, "FLAC", "PCM_16")
        cached = genrelib.audio.load(row.path, sr=16000)
        source = genrelib.audio.load(index.set_index("track_id").loc[row.track_id, "path"], sr=16000)
        expected = augment.apply_method(source, sr=16000, method=row.method, params=json.loads(row.params))
        gain = min(1.0, (32767 / 32768) / np.max(np.abs(expected)))
        assert cached.shape == source.shape
        np.testing.assert_allclose(cached, expected * gain, atol=1 / 32768 + 1e-7)


def test_parameters_are_drawn_in_range_and_recorded(done):
    _, manifest, _ = done
    config = AugmentConfig()
    params = manifest[manifest["method"] != "original"].apply(lambda r: (r.method, json.loads(r.params)), axis=1)
    rates = [p["rate"] for m, p in params if m == "time_stretch"]
    steps = [p["n_steps"] for m, p in params if m == "pitch_shift"]
    snrs = [p["snr_db"] for m, p in params if m == "white_noise"]
    assert config.stretch_rate_range[0] <= min(rates) and max(rates) <= config.stretch_rate_range[1]
    assert config.pitch_steps_range[0] <= min(steps) and max(steps) <= config.pitch_steps_range[1]
    assert config.noise_snr_db_range[0] <= min(snrs) and max(snrs) <= config.noise_snr_db_range[1]
    assert len(set(rates)) == len(rates)  # one draw per copy, not one per run


def test_second_run_reuses_the_cache_without_decoding(done, gtzan, small_split, monkeypatch):
    _, index = gtzan
    cache, manifest, digests = done
    mtimes = {p: p.stat().st_mtime_ns for p in Path(cache).rglob("*.flac")}

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached item was decoded again")

    monkeypatch.setattr(genrelib.audio, "load", no_decoding)
    again = augment.augment_split(index, small_split, cache_dir=cache, seed=0, n_jobs=1, progress=False)
    pd.testing.assert_frame_equal(again, manifest)
    assert {p: p.stat().st_mtime_ns for p in Path(cache).rglob("*.flac")} == mtimes


def test_serial_run_and_other_seed(done, gtzan, small_split, tmp_path):
    """n_jobs does not change a byte; another seed gives other parameters and other files."""
    _, index = gtzan
    _, manifest, digests = done
    serial = augment.augment_split(index, small_split, cache_dir=tmp_path / "serial", seed=0, n_jobs=1,
                                   progress=False)
    assert cache_digests(tmp_path / "serial") == digests
    pd.testing.assert_frame_equal(serial.drop(columns="path"), manifest.drop(columns="path"))
    other = augment.augment_split(index, small_split, cache_dir=tmp_path / "serial", seed=1, n_jobs=1,
                                  progress=False, track_ids=["rock.00000"])
    augmented = other[other["method"] != "original"]
    assert not set(augmented["path"]) & set(manifest["path"])
    assert len(cache_digests(tmp_path / "serial")) == 33


def test_interrupted_run_resumes_to_a_byte_identical_cache(done, gtzan, small_split, tmp_path, monkeypatch):
    _, index = gtzan
    _, _, digests = done
    real_write, calls = augment._write_flac, []

    def write_then_interrupt(path, y, **kwargs):
        calls.append(path)
        if len(calls) == 8:
            raise KeyboardInterrupt  # as Ctrl-C in the middle of a write
        real_write(path, y, **kwargs)

    monkeypatch.setattr(augment, "_write_flac", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        augment.augment_split(index, small_split, cache_dir=tmp_path, seed=0, n_jobs=1, progress=False)
    partial = cache_digests(tmp_path)
    assert len(partial) == 7 and all(digests[name] == digest for name, digest in partial.items())
    monkeypatch.setattr(augment, "_write_flac", real_write)
    augment.augment_split(index, small_split, cache_dir=tmp_path, seed=0, n_jobs=2, progress=False)
    assert cache_digests(tmp_path) == digests


def test_killed_cli_run_resumes_to_a_byte_identical_cache(gtzan, tmp_path):
    """A real interruption: SIGKILL the command while its workers write, run it again."""
    root, index = gtzan
    split = data.split_fault_filtered(index)
    command = [sys.executable, "-m", "genrelib", "augment", "--split", "fault_filtered", "--data", str(root),
               "--quiet", "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "out")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    process = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "cache").rglob("*.flac"))) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = {k: v for k, v in cache_digests(tmp_path / "cache").items() if not Path(k).name.startswith(".")}
    assert 0 < len(finished) < 3 * len(split.train)
    assert subprocess.run(command, env=env).returncode == 0
    reference = tmp_path / "reference"
    augment.augment_split(index, split, cache_dir=reference, seed=0, n_jobs=2, progress=False)
    resumed = {k: v for k, v in cache_digests(tmp_path / "cache").items() if not Path(k).name.startswith(".")}
    assert resumed == cache_digests(reference)
    assert all(resumed[name] == digest for name, digest in finished.items())


def test_copies_and_method_subset(gtzan, small_split, tmp_path):
    _, index = gtzan
    config = AugmentConfig(methods=("pitch_shift",), copies_per_method=3)
    manifest = augment.augment_split(index, small_split, config=config, cache_dir=tmp_path, n_jobs=1,
                                     progress=False, track_ids=["pop.00000"], include_original=False)
    assert list(manifest["item_id"]) == [f"pop.00000+pitch_shift#{k}" for k in range(3)]
    assert manifest["params"].nunique() == 3 and manifest["path"].nunique() == 3


@pytest.mark.parametrize("track_ids, error, match", [
    (["jazz.00002"], LeakageError, r"jazz.00002 \(test\)"),
    (["jazz.00000", "disco.00001"], LeakageError, r"disco.00001 \(valid\)"),
    (["jazz.00007"], LeakageError, r"jazz.00007 \(not in the split\)"),
])
def test_augmenting_a_non_training_track_raises_before_any_work(gtzan, small_split, tmp_path, track_ids, error,
                                                                match):
    _, index = gtzan
    with pytest.raises(error, match=match):
        augment.augment_split(index, small_split, cache_dir=tmp_path, track_ids=track_ids, progress=False)
    assert not any(tmp_path.iterdir())


def test_training_track_missing_from_the_index_is_a_data_error(gtzan, small_split, tmp_path):
    _, index = gtzan
    with pytest.raises(DataError, match="not in the index, e.g. blues.00000"):
        augment.augment_split(index[index["track_id"] != "blues.00000"], small_split, cache_dir=tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    ({"config": AugmentConfig(methods=("reverb",))}, "config.methods='reverb'"),
    ({"config": AugmentConfig(copies_per_method=0)}, "copies_per_method=0"),
    ({"config": AugmentConfig(pitch_steps_range=(2.0, -2.0))}, "low <= high"),
    ({"config": AugmentConfig(stretch_rate_range=(0.0, 1.2))}, r"stretch_rate_range\[0\]=0.0"),
    ({"seed": -1}, "seed=-1"),
    ({"n_jobs": 0}, "n_jobs=0"),
    ({"on_error": "ignore"}, "on_error='ignore'"),
])
def test_augment_split_checks_its_arguments(gtzan, small_split, tmp_path, kwargs, match):
    _, index = gtzan
    with pytest.raises(ParameterError, match=match):
        augment.augment_split(index, small_split, cache_dir=tmp_path, progress=False, **kwargs)


def test_unreadable_source_is_reported_and_nothing_else_is_lost(gtzan, small_split, tmp_path):
    _, index = gtzan
    broken = tmp_path / "classical.00000.wav"
    broken.write_bytes(b"RIFF....WAVEfmt not audio at all")
    index = index.copy()
    index.loc[index["track_id"] == "classical.00000", "path"] = str(broken)
    cache = tmp_path / "cache"
    with pytest.raises(AudioError, match=r"(?s)1 of 10 training clips could not be augmented.*classical.00000.wav"):
        augment.augment_split(index, small_split, cache_dir=cache, n_jobs=2, progress=False)
    assert len(list(cache.rglob("*.flac"))) == 27
    report = augment.augment_split(index, small_split, cache_dir=cache, n_jobs=1, progress=False,
                                   on_error="report")
    failed = report[report["error"].notna()]
    assert set(failed["track_id"]) == {"classical.00000"}
    assert failed.loc[failed["method"] != "original", "path"].isna().all()


# -------------------------------------------------------------------------------- leakage guard

def test_leakage_guard_passes_a_clean_manifest_and_fires_on_a_test_item(done, small_split):
    _, manifest, _ = done
    augment.assert_no_leakage(small_split, manifest)
    tampered = pd.concat([manifest, pd.DataFrame([{"item_id": "hiphop.00002+pitch_shift#0",
                                                   "track_id": "hiphop.00002"}])], ignore_index=True)
    with pytest.raises(LeakageError, match=r"1 of 41 .*hiphop.00002\+pitch_shift#0 <- hiphop.00002 \(test\)"):
        augment.assert_no_leakage(small_split, tampered)


def test_leakage_guard_fires_for_valid_and_unknown_tracks_in_any_table(small_split):
    embeddings = pd.DataFrame({"track_id": ["rock.00000", "rock.00001", "rock.00009"]})
    with pytest.raises(LeakageError, match=r"2 of 3.*rock.00001 \(valid\).*rock.00009 \(not in the split\)"):
        augment.assert_no_leakage(small_split, embeddings)
    with pytest.raises(ParameterError, match="track_id"):
        augment.assert_no_leakage(small_split, pd.DataFrame({"item_id": ["rock.00000"]}))


def test_manifest_from_another_split_is_caught(done, gtzan):
    """A manifest made for one split, used with another: its training tracks are test tracks there."""
    _, index = gtzan
    _, manifest, _ = done
    other = data.Split(("rock.00005",), (), tuple(sorted(manifest["track_id"].unique())), protocol="other")
    with pytest.raises(LeakageError, match="split 'other'"):
        augment.assert_no_leakage(other, manifest)


# ---------------------------------------------------------------------------------------- Fig 2

def test_fig2_bars_are_the_manifest_counts(done, tmp_path):
    _, manifest, _ = done
    # Uneven counts, so that a bar drawn for the wrong method or genre would show.
    manifest = pd.concat([manifest[(manifest["genre"] != "rock") | (manifest["method"] != "white_noise")],
                          manifest[(manifest["genre"] == "jazz") & (manifest["method"] == "pitch_shift")]])
    ax = plots.fig2_genre_distribution(manifest)
    expected = pd.crosstab(manifest["genre"], manifest["method"])
    heights = {}  # (genre position, method) -> bar height, read back from the drawn rectangles
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    for method, container in zip(legend[::-1], ax.containers):
        for x, bar in enumerate(container):
            heights[(x, method)] = bar.get_height()
    genres = [label.get_text() for label in ax.get_xticklabels()]
    assert genres == list(GENRES)
    assert len(heights) == expected.size
    for (x, method), height in heights.items():
        assert height == expected.loc[genres[x], method]
    assert heights[(GENRES.index("jazz"), "pitch_shift")] == 2 and heights[(GENRES.index("rock"), "white_noise")] == 0
    counts = augment.count_items(manifest)
    assert counts.set_index(["genre", "method"])["count"].to_dict() == {k: v for k, v in expected.stack().items() if v}
    ax_counts = plots.fig2_genre_distribution(counts)
    drawn = [[bar.get_height() for container in a.containers for bar in container] for a in (ax, ax_counts)]
    assert drawn[0] == drawn[1]
    (tmp_path / "figures.json").write_text('{"fig1_waveforms": "drawn earlier"}')
    paths = plots.save_figure(ax.figure, "fig2_genre_distribution", output_dir=tmp_path, note="a test manifest")
    assert all(p.stat().st_size > 1000 for p in paths) and {p.suffix for p in paths} == {".png", ".pdf"}
    readme = (tmp_path / "README.md").read_text().splitlines()
    assert readme[-2:] == ["- `fig1_waveforms`: drawn earlier", "- `fig2_genre_distribution`: a test manifest"]


def test_fig2_refuses_a_table_without_genre_and_method():
    with pytest.raises(ParameterError, match="'genre' and 'method'"):
        plots.fig2_genre_distribution(pd.DataFrame({"genre": ["rock"]}))


# ------------------------------------------------------------------------------------------- CLI

def test_cli_parses_flags_with_the_api_defaults():
    args = parse_args(["augment"])
    assert (args.split, args.methods, args.copies, args.seed, args.n_jobs) == \
        ("paper", list(AugmentConfig().methods), 1, 0, 2)
    args = parse_args(["augment", "--split", "fault_filtered", "--methods", "pitch_shift", "white_noise",
                       "--copies", "2", "--seed", "3", "--overwrite", "--quiet", "--output-dir", "x"])
    assert (args.split, args.methods, args.copies, args.seed, args.overwrite, args.quiet, args.output_dir) == \
        ("fault_filtered", ["pitch_shift", "white_noise"], 2, 3, True, True, "x")
    assert set(parse_args(["augment"]).methods) == set(augment.METHODS)
    from genrelib.cli.augment import METHOD_NAMES

    assert METHOD_NAMES == tuple(augment.METHODS)  # the light copy --help uses stays in step with the API


@pytest.mark.parametrize("argv", [["--split", "random"], ["--methods", "reverb"], ["--copies", "0"],
                                  ["--seed", "-2"], ["--n-jobs", "two"]])
def test_cli_rejects_bad_flags(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["augment", *argv])
    assert exit_info.value.code == 2 and "augment" in capsys.readouterr().err


def test_cli_writes_the_manifest_then_has_nothing_to_do(gtzan, tmp_path, capsys):
    root, index = gtzan
    argv = ["augment", "--split", "paper", "--data", str(root), "--methods", "white_noise", "--seed", "2",
            "--quiet", "--n-jobs", "1", "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path)]
    assert main(argv) == 0
    target = tmp_path / "augment_manifest_paper_seed2.csv"
    manifest = pd.read_csv(target)
    split = data.split_random(index, seed=2)
    assert set(manifest["track_id"]) == set(split.train)
    assert manifest.groupby("method").size().to_dict() == {"original": 65, "white_noise": 65}
    augment.assert_no_leakage(split, manifest)
    assert f"-> {target}" in capsys.readouterr().out
    assert main(argv) == 1
    assert "nothing to do" in capsys.readouterr().out
    assert main([*argv, "--overwrite"]) == 0


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
    assert main(["augment", "--data", str(tmp_path), "--output-dir", str(tmp_path), "--quiet"]) == 2
    assert "genrelib augment: error:" in capsys.readouterr().err


def test_unusable_cache_is_a_clear_error(gtzan, small_split, tmp_path):
    _, index = gtzan
    (tmp_path / "occupied").write_text("a file where the cache folder should be")
    with pytest.raises(genrelib.GenrelibError, match="occupied: cannot create the augmentation cache"):
        augment.augment_split(index, small_split, cache_dir=tmp_path / "occupied", progress=False)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "jazz").write_text("a file where the genre folder should be")
    with pytest.raises(genrelib.GenrelibError, match=r"jazz\.00000\+time_stretch\.\w+\.flac: cannot write"):
        augment.augment_split(index, small_split, cache_dir=tmp_path / "cache", n_jobs=2, progress=False)
    assert len(list((tmp_path / "cache").rglob("*.flac"))) > 0  # work finished before the error is kept


@pytest.mark.parametrize("wrap", [lambda augment_config: augment_config,
                                  lambda augment_config: genrelib.config.Config(augment=augment_config)])
def test_bad_ranges_are_refused_in_a_full_config_too(wrap, gtzan, small_split, tmp_path):
    _, index = gtzan
    bad = AugmentConfig(pitch_steps_range=(2.0, -2.0))
    with pytest.raises(ParameterError, match=r"pitch_steps_range=\(2.0, -2.0\)"):
        augment.augment_split(index, small_split, config=wrap(bad), cache_dir=tmp_path, n_jobs=1, progress=False)
    assert not any(tmp_path.iterdir())
