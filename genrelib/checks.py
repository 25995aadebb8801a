"""Argument checks shared by every public function (one place, one wording)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .errors import AudioError, GenrelibWarning, ParameterError

__all__ = ["valid_audio", "positive_number", "positive_int", "one_of", "in_range"]


def valid_audio(y: np.ndarray, *, name: str = "y", source: str | None = None, allow_silence: bool = False) -> np.ndarray:
    """Check a mono waveform and return it as contiguous float32.

    Raises :class:`AudioError` (naming ``source`` when given) for a non-1-D, empty, non-finite or - unless
    ``allow_silence`` - all-zero signal.
    """
    where = f"{source}: " if source else ""
    if not isinstance(y, np.ndarray):
        raise ParameterError(f"{where}{name} must be a numpy array, got {type(y).__name__}")
    if y.ndim != 1:
        raise AudioError(f"{where}{name} must be mono with shape (n,), got shape {y.shape}")
    if y.size == 0:
        raise AudioError(f"{where}{name} is empty (0 samples)")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"{where}{name} must be floating point, got {y.dtype}")
    if not np.all(np.isfinite(y)):
        bad = int(np.count_nonzero(~np.isfinite(y)))
        raise AudioError(f"{where}{name} has {bad} NaN or infinite samples")
    if not allow_silence and not np.any(y):
        raise AudioError(f"{where}{name} is silent (every sample is zero)")
    return np.ascontiguousarray(y, dtype=np.float32)


def positive_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ParameterError(f"{name}={value!r} must be a positive number")
    return float(value)


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ParameterError(f"{name}={value!r} must be a positive integer")
    return int(value)


def one_of(value, choices, name: str):
    if value not in choices:
        raise ParameterError(f"{name}={value!r} must be one of {', '.join(map(repr, choices))}")
    return value


def in_range(value, low: float, high: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (low <= value <= high):
        raise ParameterError(f"{name}={value!r} must be a number in [{low}, {high}]")
    return float(value)


def warn(message: str) -> None:
    """Emit a :class:`GenrelibWarning` pointing at the caller's caller."""
    warnings.warn(message, GenrelibWarning, stacklevel=3)
