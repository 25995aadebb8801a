"""The ``genrelib`` command: one verb per pipeline stage, each a thin layer over the public API.

Every verb lives in its own module of this package, which defines ``VERB`` (its name), ``ORDER`` (its
place in ``--help``), ``add_parser(subparsers)`` and ``run(args) -> int``. Verb modules import nothing
heavy at top level, so ``genrelib --help`` is instant; the stage's module is imported inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import warnings

from ..errors import GenrelibError, GenrelibWarning

__all__ = ["parse_args", "main", "build_parser"]


def _verb_modules():
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "VERB"):
            modules.append(module)
    return sorted(modules, key=lambda m: (m.ORDER, m.VERB))


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error convention: one line, ``genrelib VERB: error: ...``, exit code 2 (argparse
    would print the whole usage first)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="genrelib",
        description="Music genre classification, stage by stage (data, augment, embed, train, evaluate, ...).",
    )
    parser.add_argument("--version", action="version", version=f"genrelib {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    subparsers.required = True
    for module in _verb_modules():
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line (``argv`` without the program name); tests call this directly."""
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m genrelib``.

    Called as the program (``argv`` None), a verb that leaves nothing behind ends the process as soon as its
    output is flushed (:func:`_exit_when_done`); called with ``argv`` (tests, other code) it returns.
    """
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():
        warnings.simplefilter("default", GenrelibWarning)
        shown = warnings.showwarning
        warnings.showwarning = _one_line_warnings(_label(args), shown)
        try:
            code = _run(args)
        finally:
            warnings.showwarning = shown
    if argv is None:
        _exit_when_done(code)
    return code


def _exit_when_done(code: int) -> None:
    """End the process now when TensorFlow is loaded and nothing else needs a clean shutdown.

    Python's own teardown of TensorFlow and Keras takes about 2 s on 2 cores - a sixth of a cold ``genrelib
    predict`` (benchmarks/bench_predict.py) - and does nothing for the user: every file genrelib writes is complete
    and atomically renamed before a verb returns. Not taken while Ray or worker processes are alive, whose
    shutdown runs at exit.
    """
    import logging
    import multiprocessing

    if "tensorflow" not in sys.modules or "ray" in sys.modules or multiprocessing.active_children():
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (``| head``): nothing more can reach it anyway
            pass
    os._exit(code)


def _one_line_warnings(verb: str, fallback):
    """Our own warnings as one line each (``genrelib VERB: warning: ...``), not Python's file:line: source."""

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, GenrelibWarning):
            print(f"genrelib {verb}: warning: {message}", file=file or sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


def _label(args: argparse.Namespace) -> str:
    """``data split``, ``train``: the words the user typed, as every message of the verb names it."""
    return " ".join(word for word in (args.verb, getattr(args, "action", None)) if word)


def _run(args: argparse.Namespace) -> int:
    label = _label(args)
    try:
        return int(args._run(args) or 0)
    except GenrelibError as exc:
        print(f"genrelib {label}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file system refusal genrelib did not foresee: still one line, naming the file
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"genrelib {label}: error: {where}{(exc.strerror or str(exc)).lower()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"genrelib {label}: interrupted; finished items are cached and a re-run resumes", file=sys.stderr)
        return 130
