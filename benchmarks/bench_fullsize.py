"""Full GTZAN as users have it, end to end on a GTZAN-shaped stand-in (a benchmark, not a test).

    python benchmarks/bench_fullsize.py                      # 1000 tracks (100 per genre), both copies
    python benchmarks/bench_fullsize.py --per-genre 25       # 250 tracks
    python benchmarks/bench_fullsize.py --per-genre 25 100 --output results/bench_fullsize.json
    python benchmarks/bench_fullsize.py --per-genre 100 --copies archive --protocols paper --no-augment \
        --output results/bench_fullsize.json --append          # a cheaper full-size run, added to the file

For each size it builds copy 1 (the original ``genres.tar.gz`` of ``.au`` files) with
``tools/make_fullsize_gtzan.py``, serves it from 127.0.0.1, downloads it with ``genrelib data download full --url
--md5``, validates it and runs ``genrelib run --protocols paper fault_filtered kfold --seeds 3`` (default offline
backend, augmentation on), then runs it again (everything cached). Then the same from copy 2 (the Kaggle tree, with its
unreadable ``jazz.00054.wav``) with ``--on-error skip``. Every stage is a separate ``genrelib`` process in a fresh
cache and output folder per copy; per stage it records wall time, CPU time (user + system of the stage's processes),
peak RSS (the largest process of the stage, from ``wait4``), and the size of the cache on disk afterwards. It then
projects the first run for VGGish: the same run with each embedded clip's musicnn time replaced by VGGish's (timed
here on random weights, which have the same FLOPs as the real ones) and the cache scaled by the embeddings' size.

The stand-in's accuracy means nothing (variants of one real clip fall on both sides of every split) and is not
recorded. The size needs disk: about 3 GB per 1000 tracks and copy while it runs (removed afterwards, unless
``--keep``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROTOCOLS = ("paper", "fault_filtered", "kfold")


def timed(name: str, command: list[str], *, env: dict, cache: Path, log: Path, must_succeed: bool = True) -> dict:
    """Run one stage as a child process; its wall and CPU seconds, peak RSS and the cache size after it.
    ``must_succeed=False``: the exit code is recorded, not required."""
    started = time.perf_counter()
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    row = {"stage": name, "exit_code": code, "wall_s": round(time.perf_counter() - started, 1),
           "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024),
           "cache_mb": round(folder_bytes(cache) / 2**20)}
    print(json.dumps(row), flush=True)
    if code != 0 and must_succeed:
        raise SystemExit(f"bench_fullsize: stage {name!r} failed with exit code {code}; see {log}")
    return row


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):  # never the whole archive in this lean process
            digest.update(block)
    return digest.hexdigest()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def serve(folder: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def run_copy(copy: str, *, per_genre: int, source: Path, work: Path, seeds: int, log: Path,
             protocols: tuple[str, ...] = PROTOCOLS, augment: bool = True) -> dict:
    """Every stage of one copy of one size, in a fresh cache; returns the copy's record.

    This process imports nothing heavy and starts every stage (the stand-in's builder included) as a child: a
    child's peak RSS from ``wait4`` starts from its parent's at ``fork``, so a lean parent keeps it the stage's own.
    """
    cache, output = work / f"{copy}-cache", work / f"{copy}-output"
    env = {**os.environ, "GENRELIB_CACHE": str(cache), "GENRELIB_OUTPUT": str(output), "PYTHONPATH": str(ROOT)}
    env.pop("GENRELIB_DATA", None)
    genrelib = [sys.executable, "-m", "genrelib"]
    stages = []
    build = [sys.executable, str(ROOT / "tools" / "make_fullsize_gtzan.py"), copy, "--source", str(source),
             "--per-genre", str(per_genre)]
    if copy == "archive":
        stages.append(timed("build stand-in", [*build, str(work / "served")], env=env, cache=cache, log=log))
        archive = work / "served" / "genres.tar.gz"
        url, server = serve(archive.parent)
        md5 = file_md5(archive)
        data = work / "gtzan"
        stages.append(timed("download + verify + unpack", [*genrelib, "data", "download", "full", "--dest", str(data),
                                                           "--url", f"{url}/{archive.name}", "--md5", md5, "--quiet"],
                            env=env, cache=cache, log=log))
        server.shutdown()
        archive.unlink()
        skip = []
    else:
        stages.append(timed("build stand-in", [*build, str(work / "kaggle")], env=env, cache=cache, log=log))
        data = work / "kaggle" / "Data"
        skip = ["--on-error", "skip"]
    # validate of the Kaggle stand-in exits 1 by design: jazz.00054 is unreadable and no file is the published one
    stages.append(timed("validate", [*genrelib, "data", "validate", "--data", str(data), "--expected", "found"],
                        env=env, cache=cache, log=log, must_succeed=copy == "archive"))
    run = [*genrelib, "run", "--data", str(data), "--protocols", *protocols, "--seeds", str(seeds), "--quiet", *skip,
           *([] if augment else ["--no-augment"])]
    stages.append(timed("run (first)", run, env=env, cache=cache, log=log))
    stages.append(timed("run (again, cached)", run, env=env, cache=cache, log=log))
    table = json.loads((output / "results" / "table3_accuracy.json").read_text())["rows"]
    return {"copy": copy, "tracks_per_genre": per_genre, "augmentation": "on" if augment else "off", "data_label": sorted({r["data"] for r in table}),
            "protocols": sorted({r["protocol"] for r in table}), "runs_per_protocol": {r["protocol"]: r["runs"]
                                                                                        for r in table},
            "clips_embedded": count_embeddings(cache), "stages": stages,
            "second_run_share_of_first": round(stages[-1]["wall_s"] / stages[-2]["wall_s"], 4)}


def count_embeddings(cache: Path) -> int:
    return sum(1 for _ in cache.rglob("*.npz"))


def per_clip_seconds(source: Path, *, clips: int = 8) -> dict:
    """Embedding seconds per 30 s clip: musicnn-msd (the default) and VGGish (random weights, same FLOPs)."""
    from genrelib import audio, data, embed, vggish

    waveforms = [audio.load(path, sr=16000) for path in data.load_gtzan(source)["path"][:clips]]
    timings = {}
    for name, backend in (("musicnn-msd", embed.get_backend("musicnn-msd")),
                          ("vggish", vggish.VGGishBackend(weights="random"))):
        embed.embed_audio(waveforms[0], sr=16000, backend=backend)  # build and warm up
        started = time.perf_counter()
        shapes = [embed.embed_audio(y, sr=16000, backend=backend).shape for y in waveforms]
        timings[name] = {"seconds_per_clip": round((time.perf_counter() - started) / len(waveforms), 4),
                         "embedding_shape": list(shapes[0])}
    return timings


def project_vggish(record: dict, timings: dict) -> dict:
    first = next(s for s in record["stages"] if s["stage"] == "run (first)")
    clips = record["clips_embedded"]
    delta = clips * (timings["vggish"]["seconds_per_clip"] - timings["musicnn-msd"]["seconds_per_clip"])
    size = {name: int(__import__("numpy").prod(t["embedding_shape"])) for name, t in timings.items()}
    return {"copy": record["copy"], "tracks_per_genre": record["tracks_per_genre"],
            "run_first_wall_s": round(first["wall_s"] + delta, 1),
            "embedding_values_per_clip": size, "note": "musicnn's measured run with each of its "
            f"{clips} embedded clips' time replaced by VGGish's; VGGish on random weights (same FLOPs)"}


def command_line(argv: list[str] | None) -> str:
    """The command that measured a record, without the options that only say where files go."""
    words, skip = [], False
    for word in argv if argv is not None else sys.argv[1:]:
        if skip:
            skip = False
        elif word in ("--keep", "--output"):
            skip = True
        elif word != "--append":
            words.append(word)
    return " ".join(["python benchmarks/bench_fullsize.py", *words])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-genre", type=int, nargs="+", default=[100], help="sizes to run (default 100)")
    parser.add_argument("--copies", nargs="+", choices=("archive", "kaggle"), default=["archive", "kaggle"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    parser.add_argument("--no-augment", action="store_true", help="train without augmented copies (a cheaper run)")
    parser.add_argument("--append", action="store_true", help="add the records to those already in --output")
    parser.add_argument("--source", type=Path, default=os.environ.get("GENRELIB_DATA",
                                                                       ROOT.parent / "shared/data/gtzan_mini"))
    parser.add_argument("--output", type=Path, default=None, help="JSON file to write (default: print only)")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: temporary)")
    parser.add_argument("--time-backends", action="store_true", help=argparse.SUPPRESS)  # the child that times
    args = parser.parse_args(argv)
    if args.time_backends:
        print(json.dumps(per_clip_seconds(args.source)))
        return 0
    timings = json.loads(subprocess.run([sys.executable, __file__, "--time-backends", "--source", str(args.source)],
                                        capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    print(json.dumps({"seconds_per_clip": timings}, default=str), flush=True)
    records = []
    for per_genre in args.per_genre:
        for copy in args.copies:
            work = (args.keep or Path(tempfile.mkdtemp(prefix="bench-fullsize-"))) / f"{per_genre}-{copy}"
            work.mkdir(parents=True, exist_ok=True)
            record = run_copy(copy, per_genre=per_genre, source=args.source, work=work, seeds=args.seeds,
                              log=work / "stages.log", protocols=tuple(args.protocols), augment=not args.no_augment)
            record["command"] = command_line(argv)
            record["protocols_run"], record["seeds"] = list(args.protocols), args.seeds
            record["vggish_projection"] = project_vggish(record, timings)
            records.append(record)
            print(json.dumps(record), flush=True)
            if args.keep is None:
                shutil.rmtree(work.parent, ignore_errors=True)
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": command_line(argv),
              "protocols": list(PROTOCOLS), "seeds": args.seeds, "seconds_per_clip": timings, "records": records,
              "note": "a GTZAN-shaped stand-in (tools/make_fullsize_gtzan.py); its accuracies mean nothing and "
                      "are not recorded"}
    if args.output:
        if args.append and args.output.exists():
            result["records"] = json.loads(args.output.read_text())["records"] + records
        args.output.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"bench_fullsize: wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
