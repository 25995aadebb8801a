"""genrelib: music genre classification as in "Leveraging Spectrogram Features and CNNs for Music Genre
Classification", step by step, tested.

Pipeline (one module per stage, one numbered notebook per module, one CLI verb per stage)::

    data -> augment -> embed (vggish | musicnn) -> model/train -> evaluate -> finetune -> scale

Submodules are imported on first use (``genrelib.data``, ``genrelib.embed``, ...), so ``import genrelib``
stays fast and does not load TensorFlow.
"""

import importlib

from . import quiet
from .config import GENRES, Config
from .errors import (
    AudioError,
    ChecksumError,
    DataError,
    DownloadError,
    GenrelibError,
    GenrelibWarning,
    LeakageError,
    ParameterError,
    StorageError,
    TrainingError,
    WeightsError,
)

quiet.install()  # before anything imports TensorFlow: its native start-up log never reaches the user

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "GENRES",
    "Config",
    "GenrelibError",
    "ParameterError",
    "AudioError",
    "DataError",
    "ChecksumError",
    "DownloadError",
    "WeightsError",
    "LeakageError",
    "TrainingError",
    "StorageError",
    "GenrelibWarning",
]


def __getattr__(name):
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            raise AttributeError(f"module 'genrelib' has no attribute {name!r}") from None
        raise
