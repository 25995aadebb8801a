"""The Ray session of :mod:`genrelib.scale`: optional import, start-up or connection, quiet logging, and one
error for a failed job.

Notebook: 07_scaling_out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

from ..checks import positive_int
from ..errors import GenrelibError
from ..quiet import NOISE, filtered_native_stderr

__all__ = ["INSTALL_HINT", "require_ray", "init_ray", "ray_job"]

#: How to install what :mod:`genrelib.scale` needs beyond the core.
INSTALL_HINT = "pip install 'genrelib[scale]'  (ray[data]==2.60.0, pyarrow)"

#: Node ids of local clusters started by :func:`init_ray` (nothing else runs on them).
_LOCAL_CLUSTER: set[str] = set()


def require_ray():
    """Import and return :mod:`ray` (with Ray Data), or raise a :class:`GenrelibError` saying how to install it.

    Notebook: 07_scaling_out.
    """
    # Ray reports usage statistics unless told not to; genrelib must not reach the network by itself.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise GenrelibError(f"engine='ray' needs Ray Data, which is not installed ({exc}): {INSTALL_HINT}; "
                            "or use engine='local'") from None
    return ray


def init_ray(address: str | None = None, *, num_cpus: int = 2, log_to_driver: bool = False):
    """Connect to a Ray cluster, or start a private local one; a session already started is reused.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    address : str, optional
        ``"ray://head:10001"``, ``"head:6379"`` or ``"auto"``; default ``$RAY_ADDRESS``, else a new
        local cluster.
    num_cpus : int > 0
        CPUs of the *local* cluster (2 = this project's CI machine); ignored when connecting.
    log_to_driver : bool
        Echo the workers' output (TensorFlow's start-up chatter, per actor) here. Off by default: failures
        still arrive as error rows or exceptions, and every worker's log stays in Ray's session folder
        (``/tmp/ray/session_latest/logs`` on each node).

    Returns
    -------
    ray : module
        The initialised :mod:`ray`.

    Notes
    -----
    A local cluster starts without the dashboard and with usage statistics off, so nothing leaves the
    machine. Its workers import genrelib from the same folder as this process. On a real cluster,
    genrelib must be installed in the nodes' image (see ``docs/scaling.md``). On a local cluster this
    returns once every CPU is free (a new cluster reports its CPUs a moment after start, a previous job's
    actors release theirs a moment after it ends).
    """
    ray = require_ray()
    num_cpus = positive_int(num_cpus, "num_cpus")
    if ray.is_initialized():
        if on_local_cluster(ray):
            # On our own small cluster, let a previous job's actors release their CPUs first (a shared
            # cluster is never idle, and its scheduler handles this).
            _wait_until_idle(ray)
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    options: dict[str, Any] = {"logging_level": logging.WARNING, "include_dashboard": False,
                               "log_to_driver": bool(log_to_driver)}
    if address:
        options["address"] = address
    else:
        options.update(num_cpus=num_cpus, runtime_env={"env_vars": _local_worker_environment()})
    try:
        with _without_token_notice():
            ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        raise GenrelibError(f"cannot start or reach {where}: {exc}") from exc
    _quiet_ray_data_console()
    if not address:
        _LOCAL_CLUSTER.add(ray.get_runtime_context().get_node_id())
        _wait_until_idle(ray)
    return ray


def on_local_cluster(ray) -> bool:
    """Whether this process drives the private cluster :func:`init_ray` started here (same machine, same files)."""
    return ray.is_initialized() and ray.get_runtime_context().get_node_id() in _LOCAL_CLUSTER


@contextlib.contextmanager
def _without_token_notice() -> Iterator[None]:
    """Ray 2.60 turns token authentication on for every new local cluster and says so in a WARNING on each start
    (a notice, not a problem: the token stays in ``~/.ray/auth_token``); a user who set ``RAY_AUTH_MODE`` gets
    no notice from Ray anyway."""
    def not_the_notice(record: logging.LogRecord) -> bool:
        return "Token authentication is enabled" not in record.getMessage()

    logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    logger.addFilter(not_the_notice)
    try:
        yield
    finally:
        logger.removeFilter(not_the_notice)


def _local_worker_environment() -> dict[str, str]:
    """Workers import this very genrelib; TensorFlow backends in them log only warnings and errors."""
    package_parent = str(Path(__file__).resolve().parents[2])
    python_path = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": python_path, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}


def _quiet_ray_data_console() -> None:
    # Ray Data prints an execution plan per job at INFO; the returned table carries the same facts and
    # Ray's session folder keeps the full log, so the console shows warnings only.
    for handler in logging.getLogger("ray.data").handlers:
        if type(handler).__name__ == "PlainRayHandler":
            handler.setLevel(logging.WARNING)
            handler.addFilter(_drop_false_alarms)


def _drop_false_alarms(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if "Progress bars disabled" in message:
        return False  # progress=False is a choice, not a problem
    # On a local cluster of ours, the "no available CPUs" check catches from_arrow's short metadata tasks;
    # real starvation (actors holding every CPU) cannot happen there (see genrelib.scale.embed_job._cpus_per_worker).
    return not ("does not have any available CPUs" in message and _LOCAL_CLUSTER)


def _wait_until_idle(ray, timeout: float = 10.0) -> None:
    """Wait until every CPU is free: a new cluster reports its CPUs a moment after start, and a finished
    job's actors release theirs a moment after it ends."""
    deadline = time.monotonic() + timeout
    total = ray.cluster_resources().get("CPU", 0)
    while ray.available_resources().get("CPU", 0) < total and time.monotonic() < deadline:
        time.sleep(0.2)


#: Native lines of Ray 2.60's driver during a job that no genrelib user can act on: Ray Data always passes an actor
#: pool's constructor arguments (here a backend name and its options) through the object store, and the core worker
#: then says that a restart would fail if they were lost; they live as long as the job does.
RAY_NOISE = re.compile(r"\[[^\]]*\] core_worker\.cc:\d+: Actor with class name: .* has constructor arguments in "
                       r"the object store and max_restarts > 0")
_JOB_NOISE = re.compile(f"{NOISE.pattern}|{RAY_NOISE.pattern}")


@contextlib.contextmanager
def ray_job(ray, *, progress: bool, what_survives: str) -> Iterator[None]:
    """Run the Ray Data job inside with its progress bars on or off and Ray's native ``RAY_NOISE`` dropped; a failed
    job becomes one :class:`GenrelibError` saying what survives it (``what_survives``: finished batches, cached
    items)."""
    context = ray.data.DataContext.get_current()
    saved = context.enable_progress_bars
    context.enable_progress_bars = progress
    try:
        with filtered_native_stderr(_JOB_NOISE):
            yield
    except ray.exceptions.RayError as exc:
        reason = str(exc).strip().splitlines()[0][:500]
        raise GenrelibError(f"the Ray job failed ({type(exc).__name__}: {reason}); {what_survives}") from exc
    finally:
        context.enable_progress_bars = saved
