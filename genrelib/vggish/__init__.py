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

from . import backend, convert, frontend, network, pca, smoke, weights
from .backend import *  # noqa: F403 (each module's __all__ is its public part)
from .convert import *  # noqa: F403
from .frontend import *  # noqa: F403
# The front end's other constants stay readable here, as notebooks and genrelib.finetune read them.
from .frontend import FFT_LENGTH, HOP_SAMPLES, LOG_OFFSET, MEL_MAX_HZ, MEL_MIN_HZ, WINDOW_SAMPLES  # noqa: F401
from .network import *  # noqa: F403
from .pca import *  # noqa: F403
from .smoke import *  # noqa: F403
from .weights import *  # noqa: F403

__all__ = [*frontend.__all__, *network.__all__, *weights.__all__, *convert.__all__, *pca.__all__, *smoke.__all__,
           *backend.__all__]
