"""genrelib.audio: decoding, down-mixing, resampling and every bad input of the foundation issue."""

from contextlib import nullcontext

import librosa
import numpy as np
import pytest
import soundfile as sf

from genrelib import audio
from genrelib.errors import AudioError, GenrelibError, ParameterError

from .conftest import tone


def write(path, y, sr, **kwargs):
    sf.write(path, y, sr, **kwargs)
    return path


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_formats_decode_to_float32_mono(tmp_path, ext):
    y = tone(440, sr=22050, seconds=1.5)
    path = write(tmp_path / f"clip.{ext}", y, 22050)
    out = audio.load(path, sr=None)
    assert out.dtype == np.float32 and out.ndim == 1
    # lossy codecs may pad a little; the duration is kept within a frame of 50 ms
    assert abs(len(out) - len(y)) < 0.05 * 22050


def test_stereo_loads_as_channel_mean(tmp_path):
    left, right = tone(440, sr=16000), tone(660, sr=16000, amplitude=0.25)
    path = write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(audio.load(path, sr=16000), (left + right) / 2, atol=1e-6)
    assert audio.load(path, sr=16000, mono=False).shape == (2, 16000)


@pytest.mark.parametrize("native_sr", [8000, 22050, 48000])
def test_resampling_matches_librosa_soxr(tmp_path, native_sr):
    y = tone(330, sr=native_sr, seconds=1.0)
    path = write(tmp_path / f"x{native_sr}.wav", y, native_sr, subtype="FLOAT")
    out = audio.load(path, sr=16000)
    expected = librosa.resample(y, orig_sr=native_sr, target_sr=16000, res_type="soxr_hq")
    assert len(out) == 16000
    np.testing.assert_allclose(out, expected, atol=1e-6)
    # and the tone is still at 330 Hz
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16000 / len(out) - 330) <= 1.0


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty.wav: file is empty"):
        audio.load(tmp_path / "empty.wav")


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_truncated_file(tmp_path, ext):
    path = write(tmp_path / f"full.{ext}", tone(440, sr=22050, seconds=2.0), 22050)
    data = path.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=rf"cut\.{ext}"):
        audio.load(cut)


def test_non_audio_with_audio_extension(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is a text file, not a RIFF header\n" * 20)
    with pytest.raises(AudioError, match=r"notes.wav: not a readable audio file"):
        audio.load(path)


def test_unknown_extension(tmp_path):
    path = tmp_path / "clip.xyz"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(AudioError, match=r"clip.xyz: unknown audio extension '.xyz'"):
        audio.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        audio.load(tmp_path / "absent.wav")


def test_short_clip_refused_when_asked(tmp_path):
    path = write(tmp_path / "short.wav", tone(440, sr=16000, seconds=0.5), 16000)
    assert len(audio.load(path)) == 8000  # usable by itself ...
    with pytest.raises(AudioError, match=r"short.wav: clip lasts 0.500 s, shorter than the required 0.960 s"):
        audio.load(path, min_duration=0.96)  # ... but not as a VGGish patch


def test_silence_is_an_error_unless_allowed(tmp_path):
    path = write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match=r"silence.wav: .*silent"):
        audio.load(path)
    assert not audio.load(path, allow_silence=True).any()


def test_nan_samples(tmp_path):
    y = tone(440, sr=16000)
    y[100:110] = np.nan
    path = write(tmp_path / "nan.wav", y, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan.wav: .*10 NaN or infinite samples"):
        audio.load(path)


def test_errors_are_one_family(tmp_path):
    (tmp_path / "empty.ogg").write_bytes(b"")
    with pytest.raises(GenrelibError):
        audio.load(tmp_path / "empty.ogg")


@pytest.mark.parametrize("sr, context", [(16000, nullcontext()), (None, nullcontext()),
                                          (0, pytest.raises(ParameterError)), (-1, pytest.raises(ParameterError)),
                                          (1.5, pytest.raises(ParameterError))])
def test_sample_rate_argument(tmp_path, sr, context):
    path = write(tmp_path / "a.wav", tone(), 16000)
    with context:
        audio.load(path, sr=sr)


def test_info_reads_header(tmp_path):
    path = write(tmp_path / "a.wav", tone(sr=22050, seconds=2.0), 22050)
    meta = audio.info(path)
    assert meta["samplerate"] == 22050 and meta["frames"] == 44100 and meta["channels"] == 1
    assert meta["duration"] == pytest.approx(2.0)


def test_real_mini_clip(mini_root):
    path = next((mini_root / "genres" / "metal").glob("metal.*"))
    y = audio.load(path, sr=16000)
    native = audio.info(path)
    assert y.dtype == np.float32 and abs(len(y) - native["frames"] * 16000 / native["samplerate"]) <= 1
    assert 29.9 < len(y) / 16000 < 30.1
    assert 0.01 < np.sqrt(np.mean(y**2)) < 1.0


def test_resample_is_soxr_hq_and_a_no_op_at_the_same_rate():
    y = np.sin(2 * np.pi * 440.0 * np.arange(22050) / 22050).astype(np.float32)
    assert audio.resample(y, orig_sr=22050, target_sr=22050) is y
    expected = librosa.resample(y, orig_sr=22050, target_sr=16000, res_type="soxr_hq")
    np.testing.assert_array_equal(audio.resample(y, orig_sr=22050, target_sr=16000), expected)
    assert audio.resample(np.stack([y, y]), orig_sr=22050, target_sr=16000).shape == (2, expected.size)
