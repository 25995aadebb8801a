"""genrelib.widgets: the listening panel, driven without a browser - build it, move its widgets, check the
audio and the figure it produces against the augmentation functions and librosa."""

from __future__ import annotations

import base64
import io
import re

import librosa
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from genrelib import augment, data, widgets
from genrelib.config import AugmentConfig
from genrelib.errors import ParameterError

SR = 16000


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = data.synthetic_gtzan(tmp_path_factory.mktemp("gtzan"), per_genre=2, seconds=3.0, seed=2)
    return data.load_gtzan(root)


@pytest.fixture(scope="module")
def panel(index):
    return widgets.augmentation_panel(index, offset=0.5, duration=2.0)


def played(audio) -> np.ndarray:
    """Decode what an IPython.display.Audio object would play."""
    y, rate = sf.read(io.BytesIO(audio.data), dtype="float32")
    assert rate == SR
    return y


def test_panel_starts_on_the_first_track_with_the_strongest_stretch(panel, index):
    assert panel.genre.value == "blues" and panel.track.value == "blues.00000"
    assert panel.method.value == "time_stretch" and panel.params == {"rate": 1.25}
    assert (panel.slider.min, panel.slider.max) == AugmentConfig().stretch_rate_range
    clip, rate = sf.read(index.loc[0, "path"], dtype="float32")
    source = librosa.resample(clip, orig_sr=rate, target_sr=SR, res_type="soxr_hq")
    assert panel.original.shape == (2 * SR,)
    np.testing.assert_allclose(panel.original, source[SR // 2: SR // 2 + 2 * SR], atol=1e-6)


def test_moving_the_slider_recomputes_audio_and_figure(panel):
    panel.method.value = "pitch_shift"
    assert panel.slider.description == "semitones" and panel.slider.max == 2.0
    before = panel.image.value
    panel.slider.value = -1.5
    assert panel.params == {"n_steps": -1.5}
    expected = augment.pitch_shift(panel.original, sr=SR, n_steps=-1.5)
    np.testing.assert_array_equal(panel.augmented, expected)
    # Audio(normalize=False) writes round(y * 32767) as 16-bit PCM; one gain for both players
    gain = 32767 / 32768 / max(1.0, np.abs(expected).max(), np.abs(panel.original).max())
    np.testing.assert_allclose(played(panel.audio[1]), expected * gain, atol=1 / 32768 + 1e-6)
    np.testing.assert_allclose(played(panel.audio[0]), panel.original * gain, atol=1 / 32768 + 1e-6)
    assert panel.image.value != before
    assert Image.open(io.BytesIO(panel.image.value)).size[0] > 400
    assert "n_steps=-1.5" in panel.figure._suptitle.get_text()


def test_players_hold_the_html_audio_of_both_clips(panel):
    panel.method.value = "white_noise"
    for out, audio in zip(panel.players, panel.audio):
        html = out.outputs[0]["data"]["text/html"]
        assert "<audio" in html
        encoded = re.search(r'src="data:audio/wav;base64,([^"]+)"', html).group(1)
        assert base64.b64decode(encoded) == audio.data


def test_figure_spectrograms_are_librosa_mel_db_of_the_clips(panel):
    panel.method.value = "white_noise"
    panel.slider.value = 16.0
    noisy = augment.add_white_noise(panel.original, snr_db=16.0, rng=0)
    np.testing.assert_array_equal(panel.augmented, noisy)
    mels = [librosa.feature.melspectrogram(y=y, sr=SR, n_mels=64) for y in (panel.original, noisy)]
    reference = max(m.max() for m in mels)
    images = [ax.images[0] for ax in panel.figure.axes[2:4]]
    for image, mel in zip(images, mels):
        expected = librosa.power_to_db(mel, ref=reference, top_db=80.0)
        np.testing.assert_allclose(np.asarray(image.get_array()), expected, atol=1e-3)
    # white noise raises the floor of the spectrogram: the quietest cells get louder
    floors = [np.percentile(np.asarray(image.get_array()), 10) for image in images]
    assert floors[1] > floors[0] + 1.0


def test_changing_genre_lists_its_tracks_and_updates_once(panel, monkeypatch):
    calls = []
    real_update = panel.update
    monkeypatch.setattr(panel, "update", lambda: (calls.append(1), real_update()))
    panel.genre.value = "metal"
    assert list(panel.track.options) == ["metal.00000", "metal.00001"]
    assert panel.track.value == "metal.00000" and len(calls) == 1
    panel.track.value = "metal.00001"
    assert len(calls) == 2


def test_panel_rejects_an_empty_index(index):
    with pytest.raises(ParameterError, match="non-empty DataFrame"):
        widgets.augmentation_panel(index.iloc[:0])
    with pytest.raises(ParameterError, match="duration=0"):
        widgets.augmentation_panel(index, duration=0)


def test_static_augmentation_spectrograms_share_one_db_scale():
    from genrelib import plots

    sr = 16000
    t = np.arange(2 * sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    clips = {"original": tone, "pitch_shift n_steps=+2": augment.pitch_shift(tone, sr=sr, n_steps=2.0),
             "quieter": 0.1 * tone}
    fig = plots.augmentation_spectrograms(clips, sr=sr, seconds=1.0)
    images = [ax.collections[0] for ax in fig.axes[: len(clips)]]  # the last axes is the shared colour bar
    assert [ax.get_title() for ax in fig.axes[:3]] == list(clips)
    assert all(image.get_clim() == (-80, 0) for image in images)
    # One reference for all: the loudest clip peaks at 0 dB, a copy at a tenth of the amplitude 20 dB lower.
    peaks = [float(np.max(image.get_array())) for image in images]
    assert max(peaks) == pytest.approx(0.0, abs=1e-4)  # 10 log10(S / max S) rounds to a few 1e-6 dB on AVX-512
    assert peaks[2] - peaks[0] == pytest.approx(-20.0, abs=0.1)
    with pytest.raises(ParameterError, match="clips is empty"):
        plots.augmentation_spectrograms({}, sr=sr)


def test_while_a_change_is_computed_the_panel_is_busy_and_players_and_figure_change_together(panel, monkeypatch):
    seen = []
    draw = panel._draw

    def watched():
        seen.append((panel.busy.value, panel.slider.disabled, panel.method.disabled, panel.image.value))
        return draw()

    monkeypatch.setattr(panel, "_draw", watched)
    panel.method.value = "time_stretch"
    before_image = panel.image.value
    players_before = [out.outputs for out in panel.players]
    panel.slider.value = 0.9
    busy, slider_disabled, method_disabled, image_while = seen[-1]
    assert busy == widgets.BUSY and slider_disabled and method_disabled
    assert image_while == before_image  # the old figure stays until the new players and figure replace it at once
    assert panel.busy.value == "" and not panel.slider.disabled and not panel.genre.disabled
    assert [out.outputs for out in panel.players] != players_before and panel.image.value != before_image


def test_figure_rows_share_one_time_axis_and_line_up(panel):
    spectrogram = panel.figure.axes[2]
    for top, bottom in ((panel.figure.axes[0], panel.figure.axes[2]), (panel.figure.axes[1], panel.figure.axes[3])):
        assert top.get_shared_x_axes().joined(top, bottom)
        top_box, bottom_box = top.get_position(), bottom.get_position()
        assert (top_box.x0, top_box.x1) == pytest.approx((bottom_box.x0, bottom_box.x1))
    assert spectrogram.get_xlim() == pytest.approx((0.0, panel.original.size / SR))
    width, height = Image.open(io.BytesIO(panel.image.value)).size
    assert (width, height) == (960, 400)  # drawn at the size it is shown, not scaled up


def test_a_change_recomputes_only_the_augmented_copy(panel, monkeypatch):
    calls = []
    real = augment.apply_method
    monkeypatch.setattr(augment, "apply_method", lambda y, **kw: (calls.append(kw["params"]), real(y, **kw))[1])
    panel.method.value = "pitch_shift"
    panel.slider.value = 0.7
    original_player = panel.players[0].outputs
    panel.slider.value = 1.3
    assert calls[-1] == {"n_steps": 1.3}
    assert panel.players[0].outputs is original_player  # same track, same gain: the original's player is not resent
    count = len(calls)
    panel.slider.value = 0.7  # heard before: taken from the cache
    assert len(calls) == count and panel.params == {"n_steps": 0.7}
    np.testing.assert_array_equal(panel.augmented, augment.pitch_shift(panel.original, sr=SR, n_steps=0.7))
