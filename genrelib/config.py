"""The one configuration object: the paper's Table 1 as defaults, every choice the paper leaves open
written down with the reason.

Notebook: every notebook's constants cell. CLI: ``--config FILE.json`` and ``--set section.key=value``.

The paper ("Leveraging Spectrogram Features and CNNs for Music Genre Classification") gives the training
hyper-parameters (Table 1) but not the split, the CNN's layer sizes or the augmentation ranges; those
defaults are ours and say so.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ParameterError

__all__ = [
    "GENRES",
    "PROTOCOLS",
    "AugmentConfig",
    "ModelConfig",
    "TrainConfig",
    "EmbedConfig",
    "DataConfig",
    "Config",
    "quick_mode",
]

#: How tracks are split into training, validation and test (:func:`genrelib.train.make_splits`).
PROTOCOLS = ("paper", "fault_filtered", "kfold", "artist")

#: The ten GTZAN genres, in the order used for labels everywhere.
GENRES = (
    "blues", "classical", "country", "disco", "hiphop",
    "jazz", "metal", "pop", "reggae", "rock",
)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation of training clips (the paper names the methods, not their ranges).

    Ranges are drawn uniformly per augmented copy. Why these values: a tempo change of at most
    -20 %/+25 % and a pitch change of at most 2 semitones keep a track inside its genre's usual tempo and
    key range (a disco track slowed by 20 % still sounds like disco); 15-30 dB SNR white noise is clearly
    audible yet leaves the music dominant, like a poor recording.
    """

    methods: tuple[str, ...] = ("time_stretch", "pitch_shift", "white_noise")
    copies_per_method: int = 1
    stretch_rate_range: tuple[float, float] = (0.8, 1.25)
    pitch_steps_range: tuple[float, float] = (-2.0, 2.0)
    noise_snr_db_range: tuple[float, float] = (15.0, 30.0)
    sample_rate: int = 16000


@dataclass(frozen=True)
class ModelConfig:
    """The classifier CNN on a clip's embedding sequence (sizes are ours: the paper gives none).

    Convolutions run along the patch (time) axis with the embedding dimensions as channels: neighbouring
    embedding dimensions (PCA components for VGGish, units for musicnn) have no local structure for a
    kernel to exploit, while neighbouring patches do. Two blocks of 64 and 128 filters, kernel 3 (about
    3 s of VGGish patches, 9 s of musicnn patches), a 64-unit dense layer: 89 k weights for musicnn's
    10 x 200 input (116 k for VGGish's 31 x 128), small beside the ~2 800 clips of full GTZAN's training
    side with three augmented copies, and regularised by the paper's dropout of 0.6.

    Chosen on inner validation only (mini set, musicnn-msd, 5-fold x 3 seeds, 10 validation tracks per
    fold, Table 1 training unchanged): validation accuracy 0.953 for (64, 128) / 64, against 0.920 for
    (32, 64) / 32, 0.847 for (16, 32) / 32 and for one 32-filter block, 0.927 for (128, 256) / 128, 0.933
    for (64, 128) / 128 and 0.900 with kernel 1 (see ``results/README.md``).

    Attributes
    ----------
    conv_filters : tuple of int > 0
        Filters of each convolution + ReLU + max-pooling block, in order.
    kernel_size : int > 0 [patches]
    pool_size : int > 0 [patches]
        Max-pooling window and stride ("same" padding, so a clip of a single patch still passes).
    dense_units : int > 0
        The fully connected layer between the flattened features and the dropout.
    dropout_rate : float in [0, 1)
        The paper's Table 1: 0.6.
    standardize : bool
        Standardise each embedding dimension with the training set's mean and variance (a Keras
        ``Normalization`` layer inside the model, so a saved model carries its statistics to ``predict``).
    variance_floor : float in [0, 1]
        With ``standardize``, no dimension is divided by a standard deviation smaller than
        ``sqrt(variance_floor * mean variance over dimensions)``: a dimension (nearly) constant in training
        but active on a new clip would otherwise be blown up without bound. YAMNet's embedding needs it
        (most of its 1024 dimensions are zero on almost every patch, and Keras' plain ``Normalization``
        then gives validation losses over 100). At the default 0.01 a floored dimension scales a
        deviation at most ``1 / sqrt(0.01)`` = 10 times as much as a dimension of mean variance would. On
        the mini set's paper and k-fold training sides no dimension of musicnn-msd, musicnn-mtt or mfcc
        is floored, and up to 560 of YAMNet's are (``results/embedding_variance.md``, from
        ``tools/embedding_variance.py``), so only YAMNet's models change. 0 turns the floor off.
    pad_mode : {"repeat", "zero"}
        How a clip with fewer patches than the model's input is filled (see
        :func:`genrelib.model.fit_patches`): repeating the clip keeps every row a real embedding; zeros
        are what the raw embedding of silence is not, and are offered for comparison.
    """

    conv_filters: tuple[int, ...] = (64, 128)
    kernel_size: int = 3
    pool_size: int = 2
    dense_units: int = 64
    dropout_rate: float = 0.6
    standardize: bool = True
    variance_floor: float = 0.01
    pad_mode: str = "repeat"


@dataclass(frozen=True)
class TrainConfig:
    """The paper's Table 1 (RMSprop, lr 0.001, rho 0.9, 30 epochs, batch 32, categorical cross-entropy),
    plus the split settings the paper leaves open.

    Attributes
    ----------
    optimizer : {"rmsprop", "adam", "sgd"}
    learning_rate : float > 0
    rho : float in [0, 1)
        RMSprop's moving-average factor (ignored by the other optimizers).
    epochs, batch_size : int > 0
    loss : {"categorical_crossentropy"}
    checkpoint : {"best", "last"}
        Which weights predict the validation and test clips: ``"best"`` is the epoch with the lowest
        validation loss (validation tracks only, never test), ``"last"`` the final epoch.
    test_size : float in (0, 1)
        Test fraction of the ``paper`` protocol (0.25: about 25 tracks per genre of full GTZAN).
    valid_size : float in [0, 1)
        Validation tracks carved from training (``paper``: a fraction of all tracks; ``kfold``: of each
        fold's training tracks).
    folds : int >= 0
        ``kfold``'s and ``artist``'s k; 0 means 10, or 5 when a genre has fewer than 50 tracks (the mini set).
    n_seeds : int > 0
        Repeat each protocol with seeds ``seed, seed + 1, ...``; results report mean and std.
    """

    optimizer: str = "rmsprop"
    learning_rate: float = 0.001
    rho: float = 0.9
    epochs: int = 30
    batch_size: int = 32
    loss: str = "categorical_crossentropy"
    checkpoint: str = "best"
    test_size: float = 0.25
    valid_size: float = 0.1
    folds: int = 0
    n_seeds: int = 1


@dataclass(frozen=True)
class EmbedConfig:
    """Which embedding network turns audio into a sequence of vectors."""

    backend: str = "auto"
    batch_size: int = 64


@dataclass(frozen=True)
class DataConfig:
    """How the data is read.

    Attributes
    ----------
    on_error : {"raise", "skip"}
        A track whose file cannot be read (``jazz.00054.wav`` of the Kaggle copy): stop with an error naming
        it, or leave it out and name it in every run's facts and results table ("999 tracks; skipped:
        jazz.00054 (unreadable)"). Not part of a run's cache key: the data checksum of the tracks actually
        used is.
    labels : tuple of str
        The labels to classify, in the network's output order; empty (the default): those of the data -
        GTZAN's ten :data:`GENRES`, or every label folder of a collection, sorted
        (:func:`genrelib.collection.load_collection`). Naming some labels of a collection uses only those.
        Each run stores its labels (``meta.json``), and ``predict`` answers with them.
    """

    on_error: str = "raise"
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """Everything a run depends on. Immutable; derive variants with :meth:`replace`."""

    seed: int = 0
    protocol: str = "paper"
    augment_training: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dictionary (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ParameterError`."""
        return _build(cls, values, prefix="")

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Config":
        """Read a configuration written by :meth:`to_json` (missing keys keep their defaults)."""
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ParameterError(f"{path}: cannot read configuration: {exc}") from exc
        return cls.from_dict(values)

    def to_json(self, path: str | os.PathLike) -> None:
        from .storage import atomic_write_json

        atomic_write_json(path, self.to_dict(), indent=2)

    def validate(self) -> "Config":
        """Check every value, whatever set it (defaults, a file, ``--set``, a flag); return ``self``.

        Raises :class:`ParameterError` naming the first wrong key and its value. The CLI and every entry point
        that trains call it before any work starts, so a wrong value costs nothing.
        """
        from .checks import in_range, one_of, positive_int, positive_number

        def fraction(value, name, *, zero_ok):
            value = in_range(value, 0.0, 1.0, name)
            if value == 1.0 or (value == 0.0 and not zero_ok):
                raise ParameterError(f"{name}={value!r} must lie in {'[0' if zero_ok else '(0'}, 1)")

        non_negative(self.seed, "seed")
        one_of(self.protocol, PROTOCOLS, "protocol")
        augment = self.augment
        for method in augment.methods:
            one_of(method, ("time_stretch", "pitch_shift", "white_noise"), "augment.methods")
        positive_int(augment.copies_per_method, "augment.copies_per_method")
        for name in ("stretch_rate_range", "pitch_steps_range", "noise_snr_db_range"):
            low, high = ordered_pair(getattr(augment, name), f"augment.{name}")
            if name == "stretch_rate_range":
                positive_number(low, f"augment.{name}")
        positive_int(augment.sample_rate, "augment.sample_rate")
        model = self.model
        if not model.conv_filters:
            raise ParameterError("model.conv_filters=() must name at least one block")
        for filters in model.conv_filters:
            positive_int(filters, "model.conv_filters")
        for name in ("kernel_size", "pool_size", "dense_units"):
            positive_int(getattr(model, name), f"model.{name}")
        fraction(model.dropout_rate, "model.dropout_rate", zero_ok=True)
        in_range(model.variance_floor, 0.0, 1.0, "model.variance_floor")
        one_of(model.pad_mode, ("repeat", "zero"), "model.pad_mode")
        train = self.train
        one_of(train.optimizer, ("rmsprop", "adam", "sgd"), "train.optimizer")
        positive_number(train.learning_rate, "train.learning_rate")
        fraction(train.rho, "train.rho", zero_ok=True)
        positive_int(train.epochs, "train.epochs")
        positive_int(train.batch_size, "train.batch_size")
        one_of(train.loss, ("categorical_crossentropy",), "train.loss")
        one_of(train.checkpoint, ("best", "last"), "train.checkpoint")
        fraction(train.test_size, "train.test_size", zero_ok=False)
        fraction(train.valid_size, "train.valid_size", zero_ok=True)
        if train.folds == 1 or train.folds < 0:
            raise ParameterError(f"train.folds={train.folds!r} must be 0 (automatic) or at least 2")
        positive_int(train.n_seeds, "train.n_seeds")
        positive_int(self.embed.batch_size, "embed.batch_size")
        one_of(self.data.on_error, ("raise", "skip"), "data.on_error")
        return self

    def keyed_settings(self) -> dict[str, Any]:
        """:meth:`to_dict` less ``seed`` (runs of every seed share a folder) and ``data`` (which tracks were
        read is in the data checksum): what a cache key of trained runs hashes."""
        return {k: v for k, v in self.to_dict().items() if k not in ("seed", "data")}

    def replace(self, **overrides: Any) -> "Config":
        """Copy with dotted overrides, e.g. ``replace(**{"train.epochs": 5, "seed": 1})``."""
        values = self.to_dict()
        for dotted, value in overrides.items():
            *sections, key = dotted.split(".")
            target = values
            for section in sections:
                if not isinstance(target.get(section), dict):
                    raise ParameterError(f"unknown configuration section {section!r} in {dotted!r}")
                target = target[section]
            if key not in target:
                raise ParameterError(f"unknown configuration key {dotted!r}")
            target[key] = value
        return Config.from_dict(values)


def _build(cls, values: dict[str, Any], *, prefix: str):
    if not isinstance(values, dict):
        raise ParameterError(f"configuration section {prefix or 'root'!r} must be a mapping")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ParameterError(f"unknown configuration key(s) {', '.join(prefix + k for k in unknown)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, prefix=f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, default, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(value: Any, default: Any, name: str) -> Any:
    """Give ``value`` the type of ``default`` (JSON and the CLI deliver lists and strings)."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                return value.lower() in {"true", "1", "yes"}
            return bool(value)
        if isinstance(default, tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            kind = type(default[0]) if default else str
            return tuple(kind(item) for item in items)
        return type(default)(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name}={value!r} cannot be read as {type(default).__name__}") from exc


def non_negative(value: Any, name: str) -> int:
    """An integer >= 0 (seeds)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParameterError(f"{name}={value!r} must be a non-negative integer")
    return value


def ordered_pair(value: Any, name: str) -> tuple[float, float]:
    """A (low, high) range of finite numbers with low <= high."""
    import math

    if len(value) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value) \
            or value[0] > value[1]:
        raise ParameterError(f"{name}={tuple(value)!r} must be (low, high) with finite low <= high")
    return float(value[0]), float(value[1])


def quick_mode() -> bool:
    """True when ``GENRELIB_QUICK=1``: notebooks then run few clips and few epochs (CI's setting)."""
    return os.environ.get("GENRELIB_QUICK", "0").strip().lower() in {"1", "true", "yes"}
