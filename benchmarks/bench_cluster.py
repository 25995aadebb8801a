"""Scaling past one machine, on one machine: a Ray cluster of a head and worker nodes started with ``ray start``,
against one process with the same CPUs, same clips, same output.

    python benchmarks/bench_cluster.py [--clips 40] [--backend auto] [--nodes 2] [--cpus-per-node 1] [--repeats 2]

The head node gets no CPUs (it only schedules); each worker node is a separate raylet with its own object store,
so decoded audio travels between nodes as it would between machines (over loopback TCP here). The embedding job is
``genrelib.scale.embed_catalogue(..., engine="ray", address=<head>)`` - what a user runs against a real cluster -
and the reference is ``engine="local"`` (one process, no Ray). Runs take turns; medians reported. It prints the
clips/s of each, the cluster's rate against one process at the same total CPUs, the fixed cost of a job (a one-clip
job) and the rate beyond it, and how far the cluster's embeddings are from one process's (exactly equal, or the
largest difference). Writes ``results/bench_cluster_<backend>.json``. The nodes are stopped at the end (also on
failure); the cluster uses its own temporary folder, so a Ray session of yours is not touched.

Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks import provenance  # noqa: E402
from benchmarks.bench_scale import pick_clips  # noqa: E402
from genrelib import data, embed, scale  # noqa: E402
from genrelib.storage import output_dir  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="GTZAN root (default: $GENRELIB_DATA, ...)")
    parser.add_argument("--clips", type=int, default=40, help="clips per run (genres in turn)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--nodes", type=int, default=2, help="worker nodes (default 2)")
    parser.add_argument("--cpus-per-node", type=int, default=1, help="CPUs of each worker node (default 1)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per engine, taking turns (default 2)")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ray_cli(*args: str, env: dict) -> None:
    """One ``ray`` command; its output only when it fails."""
    done = subprocess.run([RAY, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"ray {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@contextlib.contextmanager
def local_cluster(*, nodes: int, cpus_per_node: int, temp_dir: Path):
    """A head without CPUs and ``nodes`` worker nodes, each its own raylet; yields (address, start seconds)."""
    # Ray 2.60 turns token authentication on for a cluster when ~/.ray/auth_token exists (its ray.init() of a
    # local cluster writes one), and nodes that disagree on it cannot join: every process of this cluster, and
    # this driver, get the mode and a token of their own.
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(provenance.ROOT), os.environ.get("PYTHONPATH")]))}
    port = free_port()
    address = f"127.0.0.1:{port}"
    started = time.perf_counter()
    try:
        ray_cli("start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=0",
                "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}", env=env)
        for _ in range(nodes):
            ray_cli("start", f"--address={address}", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}",
                    "--disable-usage-stats", f"--temp-dir={temp_dir}", env=env)
        yield address, time.perf_counter() - started
    finally:
        stop_cluster(temp_dir, port)


def stop_cluster(temp_dir: Path, port: int) -> None:
    """End every process of this cluster and no other (``ray stop`` would also stop the user's own Ray): those
    naming its folder or its head's port, and their children (the nodes' agents)."""
    import psutil

    ours = {}
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(str(temp_dir) in part or part.endswith(f":{port}") for part in process.info["cmdline"] or ()):
                for member in [process, *process.children(recursive=True)]:
                    ours[member.pid] = member
    ours = list(ours.values())
    for process in ours:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(ours, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


def timed_job(clips, *, backend: str, output: Path, engine: str, address: str | None = None,
              num_workers: int = 1) -> float:
    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    scale.embed_catalogue(clips, backend=backend, output=output, engine=engine, address=address,
                          num_workers=num_workers, progress=False)
    return time.perf_counter() - start


def largest_difference(first: Path, second: Path) -> tuple[bool, float, int]:
    """(exactly equal, largest |difference|, clips compared) between two catalogues' embeddings."""
    a, b = scale.load_catalogue(first), scale.load_catalogue(second)
    equal, largest = True, 0.0
    for item_id in a.index:
        x, y = np.asarray(a.loc[item_id, "embedding"]), np.asarray(b.loc[item_id, "embedding"])
        if x.shape != y.shape:
            return False, float("inf"), len(a)
        equal &= bool(np.array_equal(x, y))
        largest = max(largest, float(np.abs(x - y).max()))
    return equal, largest, len(a)


def main(argv=None) -> int:
    args = parse_args(argv)
    root, source = data.resolve_root(args.data)
    clips = pick_clips(root, args.clips)
    backend = embed.resolve_backend(args.backend)
    cpus = args.nodes * args.cpus_per_node
    with tempfile.TemporaryDirectory(prefix="genrelib-cluster-") as scratch:
        scratch = Path(scratch)
        # Ray's socket paths must stay short: its own folder directly under the system temp folder.
        ray_temp = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))
        try:
            with local_cluster(nodes=args.nodes, cpus_per_node=args.cpus_per_node, temp_dir=ray_temp) as (
                    address, start_seconds):
                print(f"cluster: head (0 CPUs) + {args.nodes} worker node(s) x {args.cpus_per_node} CPU at "
                      f"{address}, started in {start_seconds:.1f} s")
                # Warm-up, timed apart: the cluster's first job also starts its worker processes, this process's
                # first one imports TensorFlow and builds the model.
                warm_up = timed_job(clips.head(2), backend=backend, output=scratch / "warm", engine="ray",
                                    address=address)
                timed_job(clips.head(2), backend=backend, output=scratch / "warm-local", engine="local")
                seconds = {"local": [], "cluster": []}
                one_clip = {"local": [], "cluster": []}  # a job's fixed cost: model load, actor start, scheduling
                for _ in range(args.repeats):
                    for engine, options in (("local", {"engine": "local"}),
                                            ("cluster", {"engine": "ray", "address": address})):
                        seconds[engine].append(timed_job(clips, backend=backend, output=scratch / engine, **options))
                        one_clip[engine].append(timed_job(clips.head(1), backend=backend,
                                                          output=scratch / f"{engine}-1", **options))
                    print(f"  local {seconds['local'][-1]:.1f} s (1 clip {one_clip['local'][-1]:.1f} s), cluster "
                          f"{seconds['cluster'][-1]:.1f} s (1 clip {one_clip['cluster'][-1]:.1f} s)")
                ray = scale.require_ray()
                ray.shutdown()
        finally:
            shutil.rmtree(ray_temp, ignore_errors=True)
        equal, largest, compared = largest_difference(scratch / "local", scratch / "cluster")
    medians = {engine: statistics.median(values) for engine, values in seconds.items()}
    fixed = {engine: statistics.median(values) for engine, values in one_clip.items()}
    rate = {engine: len(clips) / value for engine, value in medians.items()}
    # Clips/s once a job runs: the extra clips over the extra seconds of the full job against the one-clip job.
    marginal = {engine: (len(clips) - 1) / max(medians[engine] - fixed[engine], 1e-9) for engine in medians}
    print(f"{len(clips)} clips, backend {backend}, {cpus} CPUs in all, median of {args.repeats}:")
    print(f"  one process (engine='local'): {medians['local']:.1f} s, {rate['local']:.2f} clips/s")
    print(f"  cluster of {args.nodes} nodes (engine='ray'): {medians['cluster']:.1f} s, {rate['cluster']:.2f} "
          f"clips/s = {rate['cluster'] / rate['local']:.2f} x one process (first job's start-up {warm_up:.1f} s "
          "apart)")
    print(f"  fixed cost of a job (1 clip): one process {fixed['local']:.1f} s, cluster {fixed['cluster']:.1f} s; "
          f"clips/s beyond it: one process {marginal['local']:.2f}, cluster {marginal['cluster']:.2f} = "
          f"{marginal['cluster'] / marginal['local']:.2f} x")
    print(f"  embeddings of {compared} clips: " + ("exactly equal" if equal else f"largest |difference| {largest:.3g}"))
    report = {
        "commit": provenance.commit(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpu": provenance.cpu(), "cpus_visible": os.cpu_count(),
                    "load_average_after": os.getloadavg()[0]},
        "data": {"root": str(root), "source": source, "clips": len(clips)}, "backend": backend,
        "cluster": {"head_cpus": 0, "worker_nodes": args.nodes, "cpus_per_node": args.cpus_per_node,
                    "start_seconds": start_seconds, "first_job_seconds": warm_up},
        "seconds": seconds, "median_seconds": medians, "clips_per_s": rate,
        "cluster_vs_one_process": rate["cluster"] / rate["local"],
        "one_clip_job_seconds": one_clip, "median_one_clip_job_seconds": fixed, "marginal_clips_per_s": marginal,
        "marginal_cluster_vs_one_process": marginal["cluster"] / marginal["local"],
        "embeddings": {"clips": compared, "exactly_equal": equal, "largest_abs_difference": largest},
    }
    path = output_dir("results") / f"bench_cluster_{backend}.json"
    provenance.write_json(path, report)
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
