"""Keep TensorFlow's native start-up log off the user's screen, while real errors stay visible.

TensorFlow's C++ core writes its start-up chatter straight to file descriptor 2, before and regardless of
``TF_CPP_MIN_LOG_LEVEL`` (absl's "All log messages before absl::InitializeLog() ..." preamble, "Could not find cuda
drivers", ``failed call to cuInit`` on a machine without a GPU, the CPU-instruction notice). Python's own warnings
and exceptions are untouched; only lines matching :data:`NOISE` are dropped, everything else written on the
descriptor while it is filtered is passed on as it came.

:func:`install` (called by ``import genrelib``) arranges that the first ``import tensorflow`` - by genrelib, Keras,
musicnn or the user - runs inside :func:`filtered_native_stderr`, and initialises the devices there too, since that is
where the CUDA probe speaks.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from typing import Iterator

__all__ = ["NOISE", "RETRACING", "filtered_native_stderr", "install"]

#: Lines of TensorFlow's native log that say nothing to a genrelib user.
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:. ]+\d+ \S+\.cc:\d+\]"  # absl INFO and WARNING lines
    r"|E\d{4} [\d:. ]+\d+ cuda_(platform|executor|diagnostics)\.cc:\d+\] .*(cuInit|CUDA|cuda)"
    r"|E\d{4} [\d:. ]+\d+ node_def_util\.cc:\d+\] NodeDef mentions attribute use_unbounded_threadpool"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)"  # the TF-Lite interpreter's first allocation
)


#: TensorFlow's Python-logger warning when one Python function was traced many times. genrelib builds a new model per
#: run, fold and seed by design, so every protocol of more than five runs would print it, and the advice in it
#: (define the function outside the loop) is for Keras' own code, not the user's.
RETRACING = re.compile(r"triggered tf\.function retracing")


class _DropRetracingWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not RETRACING.search(record.getMessage())


@contextlib.contextmanager
def filtered_native_stderr(pattern: re.Pattern = NOISE) -> Iterator[None]:
    """Capture file descriptor 2 for the block; afterwards write back every line that ``pattern`` does not match.

    Python's ``sys.stderr`` keeps writing to the real stream meanwhile (a progress bar is not held back); only
    what native code writes on the descriptor is held until the block ends.
    """
    try:
        stderr_fd = sys.__stderr__.fileno() if sys.__stderr__ else 2
    except (AttributeError, OSError, ValueError):  # no real descriptor (some embedded interpreters)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    python_stderr = sys.stderr
    live = _live_stderr(stderr_fd, python_stderr.encoding) if python_stderr is sys.__stderr__ else python_stderr
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), stderr_fd)  # after _live_stderr: its copy is of the real descriptor
        sys.stderr = live
        try:
            yield
        finally:
            sys.stderr.flush()
            sys.stderr = python_stderr
            os.dup2(saved, stderr_fd)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True)
                    if not pattern.match(line.decode(errors="replace"))]
            if kept:
                os.write(stderr_fd, b"".join(kept))


@functools.lru_cache(maxsize=None)
def _live_stderr(stderr_fd: int, encoding: str):
    """A stream on a copy of the real descriptor 2, made once and never closed: whatever takes ``sys.stderr``
    while the descriptor is captured (a logging handler created by TensorFlow's import, a progress bar) keeps a
    stream that works after the block."""
    return os.fdopen(os.dup(stderr_fd), "w", buffering=1, encoding=encoding, errors="backslashreplace")


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, and runs its import (and the device probe) with the native log filtered."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        original = spec.loader.exec_module

        def exec_module(module):
            with filtered_native_stderr():
                original(module)
                try:
                    module.config.list_physical_devices()
                except Exception:  # noqa: BLE001 - a broken device probe is TensorFlow's to report later
                    pass
            logging.getLogger("tensorflow").addFilter(_DropRetracingWarnings())

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Filter TensorFlow's start-up log when it is first imported (no-op when it already is, or when
    ``GENRELIB_TF_LOG=1`` asks for the raw log)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ.get("GENRELIB_TF_LOG") == "1":
        return
    if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
