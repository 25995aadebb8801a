"""VGGish's front end: 16 kHz audio -> non-overlapping 0.96 s log-mel patches [shape=(n_patches, 96, 64)].

Notebook: 03_vggish_features.

Two implementations of the same published pipeline (``vggish_input.waveform_to_examples``):

- :func:`log_mel_patches`: numpy, float64, written step by step after the official code (the notebook's
  figures, fine-tuning's patch cache and the smoke test use it); version :data:`FRONT_END_VERSION`.
- :func:`log_mel_patches_tf`: ``tf.signal``, float32, batched (the embedding backend's fast path);
  version :data:`FRONT_END_TF_VERSION`. It agrees with the numpy version to about 1e-5 in log units,
  not bit for bit, so the two caches carry their own versions.

Both resample to 16 kHz with soxr (``genrelib.audio.resample``) where the official code uses resampy; the
Notes of :func:`log_mel_patches` give the measured difference on GTZAN clips.
"""

from __future__ import annotations

import numpy as np

from ..audio import resample
from ..checks import positive_int, valid_audio
from ..errors import AudioError, ParameterError

__all__ = [
    "SAMPLE_RATE",
    "N_MELS",
    "PATCH_FRAMES",
    "MIN_SAMPLES",
    "FRONT_END_VERSION",
    "FRONT_END_TF_VERSION",
    "mel_filterbank",
    "stft_magnitude",
    "log_mel_spectrogram",
    "log_mel_patches",
    "log_mel_patches_tf",
]

#: Hz: the only rate the network was trained on.
SAMPLE_RATE = 16000
#: STFT window: 400 samples = 25 ms at 16 kHz.
WINDOW_SAMPLES = 400
#: STFT hop: 160 samples = 10 ms at 16 kHz.
HOP_SAMPLES = 160
#: FFT length: the next power of two above the window (257 frequency bins).
FFT_LENGTH = 512
N_MELS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
#: Added before the logarithm so silence maps to log(0.01), not -inf.
LOG_OFFSET = 0.01
#: Frames per patch: 96 hops of 10 ms = 0.96 s, patches do not overlap.
PATCH_FRAMES = 96
#: Samples at 16 kHz that yield one patch: 400 + 95 * 160 = 15 600 (0.975 s).
MIN_SAMPLES = WINDOW_SAMPLES + (PATCH_FRAMES - 1) * HOP_SAMPLES
#: Version of :func:`log_mel_patches` (float64 numpy): part of fine-tuning's patch cache key; changes
#: whenever its numbers would change.
FRONT_END_VERSION = "vggish-logmel-1"
#: Version of :func:`log_mel_patches_tf` (float32 tf.signal): part of every VGGish embedding's cache key.
#: It was "vggish-logmel-1" too until the two front ends got their own versions (embeddings cached
#: under the shared name are recomputed once).
FRONT_END_TF_VERSION = "vggish-logmel-tf32-1"


def _hertz_to_mel(frequency):
    """HTK mel scale: mel = 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(frequency, dtype=np.float64) / 700.0)


def mel_filterbank() -> np.ndarray:
    """VGGish's mel weights: 257 rFFT bins at 16 kHz -> 64 bands from 125 to 7500 Hz.

    Notebook: 03_vggish_features.

    Triangles are built in mel space over band edges spaced evenly between the two limits, and the DC
    bin's weight is zero. (``librosa.filters.mel`` builds its triangles in Hz and normalises their
    area, so its weights differ; that is why this is written out.)

    Returns
    -------
    weights : np.ndarray [shape=(257, 64)], float64
    """
    bins_mel = _hertz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, FFT_LENGTH // 2 + 1))
    edges = np.linspace(_hertz_to_mel(MEL_MIN_HZ), _hertz_to_mel(MEL_MAX_HZ), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def _to_16k(y: np.ndarray, sr: int, *, dtype=np.float64) -> np.ndarray:
    """Check, then resample a mono waveform to 16 kHz with soxr (float64 as the official code, or float32
    for the fast path)."""
    sr = positive_int(sr, "sr")
    valid_audio(y, allow_silence=True)  # checks only: it returns float32, and float64 input stays float64
    y = np.ascontiguousarray(y, dtype=dtype)
    y = resample(y, orig_sr=sr, target_sr=SAMPLE_RATE)
    if y.size < MIN_SAMPLES:
        raise AudioError(f"audio lasts {y.size / SAMPLE_RATE:.3f} s at 16 kHz ({y.size} samples); VGGish needs "
                         f"at least one 0.96 s patch ({MIN_SAMPLES} samples = 0.975 s including the STFT window)")
    return y


def stft_magnitude(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Magnitude spectrum of 25 ms frames every 10 ms: VGGish's first step.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio (resampled to 16 kHz first when ``sr`` differs).
    sr : int > 0 [Hz]

    Returns
    -------
    magnitude : np.ndarray [shape=(n_frames, 257)], float64
        ``|rfft(frame * periodic_hann, 512)|``; frames of 400 samples every 160, no padding, so
        ``n_frames = 1 + (n - 400) // 160`` at 16 kHz.
    """
    import scipy.signal

    y = _to_16k(y, sr)
    frames = np.lib.stride_tricks.sliding_window_view(y, WINDOW_SAMPLES)[::HOP_SAMPLES]
    window = scipy.signal.get_window("hann", WINDOW_SAMPLES, fftbins=True)  # periodic: 0.5 - 0.5 cos(2 pi n / 400)
    return np.abs(np.fft.rfft(frames * window, FFT_LENGTH, axis=-1))


def log_mel_spectrogram(y: np.ndarray, *, sr: int) -> np.ndarray:
    """``log(mel + 0.01)`` of :func:`stft_magnitude`: one 64-band row every 10 ms.

    Notebook: 03_vggish_features.

    Returns
    -------
    log_mel : np.ndarray [shape=(n_frames, 64)], float64
    """
    return np.log(stft_magnitude(y, sr=sr) @ mel_filterbank() + LOG_OFFSET)


def log_mel_patches(y: np.ndarray, *, sr: int) -> np.ndarray:
    """VGGish's input: non-overlapping 0.96 s patches of the log-mel spectrogram.

    Notebook: 03_vggish_features.

    Exactly the published pipeline (``vggish_input.waveform_to_examples``), computed in float64 with
    numpy, except that resampling uses soxr instead of resampy.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio.
    sr : int > 0 [Hz]
        Its sample rate; resampled to 16 kHz when different.

    Returns
    -------
    patches : np.ndarray [shape=(n_patches, 96, 64)], float32
        ``n_patches = n_frames // 96``; the trailing remainder (< 0.96 s) is dropped.

    Raises
    ------
    AudioError
        Fewer than 15 600 samples at 16 kHz (0.975 s): not even one patch.

    Notes
    -----
    soxr against the official resampy, measured on the mini set's 100 GTZAN clips at 22 050 Hz
    (``python tools/vggish_resampling.py``, ``results/vggish_resampling.md``): the log-mel values differ by
    0.0054 on average (median 2e-5, max 0.94, where a clip's values spread by about 1.1), nearly all of it in
    the top band (6.9-7.5 kHz, mean 0.31: resampy's filter attenuates it more; every other band <= 0.03).
    Through VGGish with random fixed weights the embeddings differ by 1.1 % (relative L2, median; cosine
    >= 0.9998); the effect on the real weights' embeddings is not measured here.
    """
    log_mel = log_mel_spectrogram(y, sr=sr)
    n_patches = log_mel.shape[0] // PATCH_FRAMES
    return log_mel[: n_patches * PATCH_FRAMES].reshape(n_patches, PATCH_FRAMES, N_MELS).astype(np.float32)


_TF_FRONT_END = None


def _tf_front_end():
    """The batched tf.signal front end as one traced graph (any batch size, any length)."""
    global _TF_FRONT_END
    if _TF_FRONT_END is None:
        import tensorflow as tf

        # tf.signal's HTK filterbank is VGGish's (same mel-space triangles, zero DC row); the unit test
        # checks it against the numpy version.
        mel = tf.signal.linear_to_mel_weight_matrix(N_MELS, FFT_LENGTH // 2 + 1, SAMPLE_RATE, MEL_MIN_HZ,
                                                    MEL_MAX_HZ, dtype=tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)], autograph=False)
        def front_end(waveforms):
            frames = tf.signal.frame(waveforms, WINDOW_SAMPLES, HOP_SAMPLES)
            window = tf.signal.hann_window(WINDOW_SAMPLES, periodic=True)
            magnitude = tf.abs(tf.signal.rfft(frames * window, [FFT_LENGTH]))
            log_mel = tf.math.log(tf.tensordot(magnitude, mel, 1) + LOG_OFFSET)
            return tf.signal.frame(log_mel, PATCH_FRAMES, PATCH_FRAMES, axis=-2)

        _TF_FRONT_END = front_end
    return _TF_FRONT_END


def log_mel_patches_tf(waveforms: np.ndarray, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Batched float32 version of :func:`log_mel_patches` with ``tf.signal`` (the fast path).

    Notebook: 03_vggish_features.

    Parameters
    ----------
    waveforms : np.ndarray [shape=(n,) or (batch, n)], float
        One clip or a batch of equally long clips.
    sr : int > 0 [Hz]
        Their sample rate; resampled to 16 kHz with soxr when different (on the host).

    Returns
    -------
    patches : np.ndarray [shape=(n_patches, 96, 64) or (batch, n_patches, 96, 64)], float32
        Agrees with :func:`log_mel_patches` to about 1e-5 (float32 against float64).
    """
    waveforms = np.asarray(waveforms)
    if waveforms.ndim not in (1, 2):
        raise ParameterError(f"waveforms must have shape (n,) or (batch, n), got {waveforms.shape}")
    rows = [_to_16k(row, sr, dtype=np.float32) for row in np.atleast_2d(waveforms)]
    patches = _tf_front_end()(rows[0][None] if len(rows) == 1 else np.stack(rows)).numpy()
    return patches[0] if waveforms.ndim == 1 else patches

