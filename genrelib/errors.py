"""One error family for the whole package.

Every failure a user can cause (a bad file, a wrong argument, missing weights) raises a subclass of
:class:`GenrelibError` whose message names the file or value and the problem. Odd but usable input
warns with :class:`GenrelibWarning`.
"""

__all__ = [
    "GenrelibError",
    "ParameterError",
    "AudioError",
    "DataError",
    "ChecksumError",
    "DownloadError",
    "TrainingError",
    "StorageError",
    "WeightsError",
    "LeakageError",
    "GenrelibWarning",
]


class GenrelibError(Exception):
    """Base class of every error genrelib raises on purpose."""


class ParameterError(GenrelibError, ValueError):
    """A malformed argument: wrong type, out of range, unknown choice."""


class AudioError(GenrelibError):
    """An audio file that cannot be used: unreadable, empty, truncated, too short, silent, NaN."""


class DataError(GenrelibError):
    """A dataset folder that does not have the expected layout or content."""


class ChecksumError(DataError):
    """A file whose checksum differs from the published one."""


class DownloadError(GenrelibError):
    """A download that failed or could not be verified."""


class TrainingError(GenrelibError):
    """Training that diverged (a non-finite loss), or a model whose outputs are not finite."""


class StorageError(GenrelibError):
    """A file that could not be written (disk full, read-only or missing folder); nothing partial is left."""


class WeightsError(GenrelibError):
    """Model weights that are missing, of the wrong shape, or fail their checksum."""


class LeakageError(GenrelibError):
    """Material derived from a validation or test track would reach training."""


class GenrelibWarning(UserWarning):
    """Odd but usable input, or a result that is not what it seems (e.g. synthetic data)."""
