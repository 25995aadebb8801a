"""What the browser tests (tests/test_book.py, tests/test_lab.py) share: finding the system Chromium."""

from __future__ import annotations

import os
import shutil


def chromium_binary() -> str | None:
    """$GENRELIB_CHROMIUM if set (None if it is not an executable), else the first Chromium on PATH."""
    names = [os.environ["GENRELIB_CHROMIUM"]] if os.environ.get("GENRELIB_CHROMIUM") else \
        ["chromium", "chromium-browser", "google-chrome"]
    return next(filter(None, map(shutil.which, names)), None)


def no_chromium_reason() -> str | None:
    """Why a browser test must skip for want of Chromium, or None when one is there."""
    if chromium_binary() is not None:
        return None
    return ("no Chromium binary: apt-get install -y chromium, or set GENRELIB_CHROMIUM "
            f"(now {os.environ.get('GENRELIB_CHROMIUM', 'unset')})")
