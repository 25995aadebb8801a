"""Shared fixtures: a fixed-seed generator, synthetic tones, a tiny GTZAN-shaped tree, the real mini set."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session writes caches into a temporary folder, never into the user's cache."""
    if "GENRELIB_TEST_CACHE" not in os.environ:
        os.environ["GENRELIB_TEST_CACHE"] = str(tmp_path_factory.mktemp("genrelib-cache"))
    monkeypatch.setenv("GENRELIB_CACHE", os.environ["GENRELIB_TEST_CACHE"])


@pytest.fixture
def rng():
    return np.random.default_rng(20241125)


def tone(freq: float = 440.0, *, sr: int = 16000, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def sine():
    return tone


@pytest.fixture(scope="session")
def tiny_gtzan(tmp_path_factory) -> Path:
    """A synthetic GTZAN tree: 10 genres x 3 tracks x 2 s, 22 050 Hz WAV."""
    from genrelib.data import synthetic_gtzan

    return synthetic_gtzan(tmp_path_factory.mktemp("tiny_gtzan"), per_genre=3, seconds=2.0, seed=1)


def _mini_root() -> Path | None:
    for candidate in (os.environ.get("GENRELIB_DATA"), ROOT.parent / "shared" / "data" / "gtzan_mini"):
        if candidate and (Path(candidate) / "genres").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def mini_root() -> Path:
    """The real GTZAN mini set (100 clips); tests using it are skipped where it is absent."""
    root = _mini_root()
    if root is None:
        pytest.skip("the GTZAN mini set is not available (set GENRELIB_DATA)")
    return root
