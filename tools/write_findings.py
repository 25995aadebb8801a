"""Rewrite the generated blocks of README.md and results/README.md from the result tables in results/ (and the
README's full-size costs from results/bench_fullsize.json).

Usage: python tools/write_findings.py [--results-dir DIR] [--check]

``make demo`` runs it after the notebooks; ``--check`` (used by the unit tests) exits 1 when a committed block
differs from what the tables give, so prose cannot drift from the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from genrelib import findings

ROOT = Path(__file__).resolve().parents[1]


def generated(results_dir: Path) -> dict[Path, str]:
    """Every file with generated blocks, as it should read."""
    results = findings.load_results(results_dir)
    blocks = {ROOT / "README.md": {"results": findings.readme_block(results)},
              ROOT / "results" / "README.md": {"results": findings.results_readme_block(results)}}
    bench = results_dir / "bench_fullsize.json"
    if bench.exists():
        blocks[ROOT / "README.md"]["fullsize"] = findings.fullsize_block(json.loads(bench.read_text()))
    texts = {}
    for path, named in blocks.items():
        text = path.read_text()
        for name, block in named.items():
            text = findings.replace_block(text, name, block)
        texts[path] = text
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=ROOT / "results")
    parser.add_argument("--check", action="store_true", help="report stale blocks instead of rewriting them")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated(args.results_dir).items():
        if path.read_text() != text:
            stale.append(path)
            if not args.check:
                path.write_text(text)
    for path in stale:
        print(f"{path.relative_to(ROOT)}: {'stale, run python tools/write_findings.py' if args.check else 'rewritten'}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
