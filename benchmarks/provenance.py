"""What every benchmark's JSON records about where it ran: the checkout's commit."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The checkout's commit (``+dirty`` with uncommitted changes to tracked files), or ``"unknown"``."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def cpu() -> dict:
    """The processor: its model name and whether it has AVX2 / AVX-512 (timings and float rounding depend on both)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {"model": "unknown"}
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}
    flags = fields.get("flags", "").split()
    return {"model": fields.get("model name", "unknown"), "avx2": "avx2" in flags, "avx512f": "avx512f" in flags}


def stamp(*, load_before: float) -> dict:
    """``machine`` (platform, :func:`cpu`, CPU count, the 1-minute load average before the run and now),
    ``commit`` and ``when`` (UTC): the fields every benchmark JSON ends with."""
    return {"machine": {"platform": platform.platform(), "cpu": cpu(), "cpus": os.cpu_count(),
                        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]}},
            "commit": commit(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_json(path: Path, result: dict) -> None:
    """``result`` as indented JSON at ``path``, atomically, with this machine's folders named neutrally."""
    from genrelib.storage import atomic_write_bytes, neutral_paths

    atomic_write_bytes(path, (neutral_paths(json.dumps(result, indent=2)) + "\n").encode())
