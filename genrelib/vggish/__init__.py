"""VGGish in native Keras 3: the published front end, the network, its weights, PCA post-processing, the
official smoke test and the embedding backend.

Notebook: 03_vggish_features.

VGGish (Hershey et al., 2017) turns 0.96 s of 16 kHz audio into a 128-d vector. One module per concern,
every public name re-exported here (``from genrelib import vggish; vggish.VGGish(...)``):

- :mod:`~genrelib.vggish.frontend`: audio -> (n_patches, 96, 64) log-mel patches (numpy and tf.signal);
- :mod:`~genrelib.vggish.network`: the Keras 3 network, its layers named after the official variables;
- :mod:`~genrelib.vggish.weights`: the official files (URLs, pinned checksums, checked download), the
  converted cache and the weights' identity;
- :mod:`~genrelib.vggish.convert`: the slim checkpoint or a SavedModel -> the cache;
- :mod:`~genrelib.vggish.pca`: PCA post-processing and its parameters;
- :mod:`~genrelib.vggish.smoke`: the official smoke test;
- :mod:`~genrelib.vggish.backend`: ``genrelib.embed``'s ``"vggish"`` backend.

The official weights are copied into the Keras network once and cached as ``.weights.h5`` under
``cache_dir("weights")``::

    genrelib weights vggish --download                        # official checkpoint, size and sha256 checked
    genrelib weights vggish --from-checkpoint vggish_model.ckpt
    genrelib weights vggish --from-hub https://tfhub.dev/google/vggish/1   # or a local SavedModel folder
    genrelib weights vggish --pca vggish_pca_params.npz       # optional post-processing (off by default)
    genrelib weights check                                    # the official smoke test

TensorFlow and Keras are imported inside the functions that need them, so ``genrelib.embed`` can ask
:func:`converted_weights_available` without loading TensorFlow.
"""

from __future__ import annotations

from .backend import VGGishBackend
from .convert import convert_checkpoint, convert_saved_model
# The front end's other constants (HOP_SAMPLES, LOG_OFFSET, ...) stay readable here, as notebooks and
# genrelib.finetune read them, without joining __all__.
from .frontend import (
    FFT_LENGTH,
    FRONT_END_TF_VERSION,
    FRONT_END_VERSION,
    HOP_SAMPLES,
    LOG_OFFSET,
    MEL_MAX_HZ,
    MEL_MIN_HZ,
    MIN_SAMPLES,
    N_MELS,
    PATCH_FRAMES,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    log_mel_patches,
    log_mel_patches_tf,
    log_mel_spectrogram,
    mel_filterbank,
    stft_magnitude,
)
from .network import EMBEDDING_SIZE, VGGish, official_variable_name, official_variables
from .pca import PCA_BYTES, PCA_SHA256, PCA_URL, convert_pca, download_pca, load_pca_params, postprocess
from .smoke import SMOKE_TEST, smoke_test
from .weights import (
    CHECKPOINT_BYTES,
    CHECKPOINT_SHA256,
    CHECKPOINT_URL,
    HUB_HANDLE,
    converted_weights_available,
    converted_weights_info,
    converted_weights_path,
    download_checkpoint,
    pca_params_path,
    weights_checksum,
    weights_status,
)

__all__ = [
    "SAMPLE_RATE",
    "EMBEDDING_SIZE",
    "PATCH_FRAMES",
    "N_MELS",
    "MIN_SAMPLES",
    "FRONT_END_VERSION",
    "FRONT_END_TF_VERSION",
    "CHECKPOINT_URL",
    "CHECKPOINT_SHA256",
    "CHECKPOINT_BYTES",
    "PCA_URL",
    "PCA_SHA256",
    "PCA_BYTES",
    "HUB_HANDLE",
    "SMOKE_TEST",
    "mel_filterbank",
    "stft_magnitude",
    "log_mel_spectrogram",
    "log_mel_patches",
    "log_mel_patches_tf",
    "VGGish",
    "official_variables",
    "official_variable_name",
    "converted_weights_path",
    "pca_params_path",
    "converted_weights_available",
    "converted_weights_info",
    "weights_checksum",
    "weights_status",
    "download_checkpoint",
    "download_pca",
    "convert_checkpoint",
    "convert_saved_model",
    "convert_pca",
    "load_pca_params",
    "postprocess",
    "smoke_test",
    "VGGishBackend",
]
