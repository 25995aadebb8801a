"""Benchmark: seconds per change of the listening panel (notebook 02), the kernel side of each kind of change.

The panel (:func:`genrelib.widgets.augmentation_panel` over the training tracks of the data set, its defaults) is
built once, then each kind of change is made ``--repeats`` times by setting the widget's value, as the browser does:

- ``genre``: the next genre (its first track is loaded, decoded and augmented; never one seen before in the run);
- ``track``: the next track of the current genre;
- ``method``: the next augmentation method (the slider moves to the method's start value);
- ``slider``: a new value of the current method's slider (never one seen before, so no cached result is reused).

A change is timed from setting the value until the panel's players and figure are replaced (the observer returns);
what the browser adds (sending about 0.5 MB of audio and PNG over the kernel's websocket, drawing it) is not in
it: ``tests/test_lab.py`` prints the browser's figure for two changes. The median and maximum per kind, the machine
and the commit are written to ``results/bench_panel.json`` (``--output``).

Usage: ``python benchmarks/bench_panel.py [--data DIR] [--repeats N] [--output FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from itertools import cycle
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import commit  # noqa: E402


def timed(change) -> float:
    start = time.perf_counter()
    change()
    return time.perf_counter() - start


def measure(panel, *, repeats: int) -> dict[str, list[float]]:
    """Seconds of each change, per kind (see the module docstring)."""
    from genrelib.widgets import SLIDERS

    genres = cycle(list(panel.genre.options)[1:] + list(panel.genre.options)[:1])
    seconds: dict[str, list[float]] = {"genre": [], "track": [], "method": [], "slider": []}
    for _ in range(repeats):
        seconds["genre"].append(timed(lambda: setattr(panel.genre, "value", next(genres))))
        tracks = list(panel.track.options)
        if len(tracks) > 1:
            seconds["track"].append(timed(lambda: setattr(panel.track, "value", tracks[1])))
        methods = list(SLIDERS)
        following = methods[(methods.index(panel.method.value) + 1) % len(methods)]
        seconds["method"].append(timed(lambda: setattr(panel.method, "value", following)))
        # Values strictly inside the range, a new one per change: a value heard before would come from the cache.
        for fraction in np.linspace(0.1, 0.9, 3):
            value = panel.slider.min + fraction * (panel.slider.max - panel.slider.min) + 1e-3 * len(seconds["slider"])
            seconds["slider"].append(timed(lambda: setattr(panel.slider, "value", round(value, 3))))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("GENRELIB_DATA", "../shared/data/gtzan_mini"))
    parser.add_argument("--repeats", type=int, default=5, help="changes of each kind (slider: 3 per repeat)")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "bench_panel.json")
    args = parser.parse_args(argv)

    import matplotlib

    import genrelib
    import genrelib.data
    import genrelib.widgets

    index = genrelib.data.load_gtzan(args.data)
    split = genrelib.data.split_random(index, seed=0)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    panel = genrelib.widgets.augmentation_panel(index[index["track_id"].isin(split.train)])
    built = time.perf_counter() - started
    seconds = measure(panel, repeats=args.repeats)
    summary = {kind: {"median_s": round(statistics.median(values), 3), "max_s": round(max(values), 3),
                      "changes": len(values)} for kind, values in seconds.items() if values}
    result = {
        "what": "seconds per change of genrelib.widgets.augmentation_panel, kernel side (widget value set until "
                "players and figure are replaced)",
        "excerpt": f"{panel.duration:g} s from {panel.offset:g} s at {panel.sr} Hz",
        "build_s": round(built, 3), "per_change": summary,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "matplotlib": matplotlib.__version__, "load_average_before": round(load_before, 2),
                    "load_average_after": round(os.getloadavg()[0], 2)},
        "data": f"{Path(args.data).name} ({len(index)} tracks, {len(split.train)} training)",
        "commit": commit(), "genrelib": genrelib.__version__,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python benchmarks/bench_panel.py", f"--repeats {args.repeats}"]),
    }
    for kind, row in summary.items():
        print(f"{kind:7s} median {row['median_s']:.2f} s, max {row['max_s']:.2f} s over {row['changes']} changes")
    print(f"built in {built:.1f} s; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"bench_panel: wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
