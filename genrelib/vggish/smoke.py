"""The official VGGish smoke test (``vggish_smoke_test.py``) on the converted weights.

Notebook: 03_vggish_features. CLI: ``genrelib weights check``.
"""

from __future__ import annotations

import os

import numpy as np

from .backend import VGGishBackend
from .frontend import SAMPLE_RATE, log_mel_patches
from .pca import postprocess
from .weights import converted_weights_path, pca_params_path

__all__ = ["SMOKE_TEST", "smoke_test"]

#: The official smoke test (research/audioset/vggish/vggish_smoke_test.py, values of July 2023).
SMOKE_TEST = {
    "seconds": 3.0,
    "frequency": 1000.0,
    "embedding_mean": 0.000657,
    "embedding_std": 0.343,
    "postprocessed_mean": 126.0,
    "postprocessed_std": 89.3,
    "rtol": 0.1,
}


def smoke_test(*, folder: str | os.PathLike | None = None):
    """The official VGGish smoke test on the converted weights: 3 s of a 1 kHz sine.

    Notebook: 03_vggish_features.

    The required rows repeat ``vggish_smoke_test.py`` (July 2023): the sine is generated at 16 kHz
    (``np.arange(0, 3, 1/16000)``), embedded, and the mean and standard deviation of the 3 x 128 values
    must be within 10 % of 0.000657 and 0.343 (126.0 and 89.3 after PCA post-processing, when PCA
    parameters are cached). An informational row also resamples the same sine generated at 44.1 kHz
    (soxr), as the older test and ``vggish_export_tfhub.py`` did; its published reference
    (mean -0.0333, std 0.380) was measured with resampy, so it is shown, not required.

    Returns
    -------
    pd.DataFrame
        One row per statistic: ``signal``, ``statistic``, ``expected``, ``measured``, ``ok``, ``required``.

    Raises
    ------
    WeightsError
        No converted weights (this test is meaningless on random weights).
    """
    import pandas as pd

    model = VGGishBackend(weights=converted_weights_path(folder), folder=folder, batch_size=8, jit_compile=False)
    seconds, frequency, rtol = SMOKE_TEST["seconds"], SMOKE_TEST["frequency"], SMOKE_TEST["rtol"]
    sine_16k = np.sin(2 * np.pi * frequency * np.arange(0, seconds, 1 / SAMPLE_RATE))
    embedding = model.embed_patches(log_mel_patches(sine_16k, sr=SAMPLE_RATE))
    official = "1 kHz sine at 16 kHz"
    rows = [(official, "embedding mean", SMOKE_TEST["embedding_mean"], embedding.mean(), True),
            (official, "embedding std", SMOKE_TEST["embedding_std"], embedding.std(), True)]
    if pca_params_path(folder).is_file():
        quantized = postprocess(embedding, pca_params=pca_params_path(folder))
        rows += [(official, "post-processed mean", SMOKE_TEST["postprocessed_mean"], quantized.mean(), True),
                 (official, "post-processed std", SMOKE_TEST["postprocessed_std"], quantized.std(), True)]
    sine_44k = np.sin(2 * np.pi * frequency * np.linspace(0, seconds, int(seconds * 44100)))
    resampled = model.embed_patches(log_mel_patches(sine_44k, sr=44100))
    rows += [("1 kHz sine at 44.1 kHz, resampled", "embedding mean", -0.0333, resampled.mean(), False),
             ("1 kHz sine at 44.1 kHz, resampled", "embedding std", 0.380, resampled.std(), False)]
    table = pd.DataFrame(rows, columns=["signal", "statistic", "expected", "measured", "required"])
    table["ok"] = np.isclose(table["measured"], table["expected"], rtol=rtol, atol=0.0)
    return table[["signal", "statistic", "expected", "measured", "ok", "required"]]
