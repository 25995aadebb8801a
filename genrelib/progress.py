"""Progress bars that do not stack: inside a long loop with its own bar, every inner bar is transient.

``run_protocol`` shows one bar over its runs; the bars of the work inside one run (augmenting, embedding, the epochs
of a fit) run under :func:`nested` and so vanish when done (``leave=False``), instead of leaving one finished bar per
run and step below the outer one. Outside such a loop an inner step's bar stays, as it always did.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

__all__ = ["leave", "nested"]

_NESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("genrelib_nested_progress", default=False)


def leave() -> bool:
    """``leave=`` for a tqdm bar: True, unless it runs inside an outer loop's bar (:func:`nested`)."""
    return not _NESTED.get()


@contextlib.contextmanager
def nested() -> Iterator[None]:
    """Bars started in this block are transient: an outer bar (the caller's) is the one that stays."""
    token = _NESTED.set(True)
    try:
        yield
    finally:
        _NESTED.reset(token)
