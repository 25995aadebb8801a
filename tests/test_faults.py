"""Bad input and faults, driven as a user drives the CLI: a subprocess per case. On every bad input stderr holds
genrelib's own ``genrelib VERB: error: ...`` (or ``warning:``) lines, indented continuation lines, and nothing
else: no traceback, no TensorFlow log. Each case names the exit code of the CLI's convention: 0 done, 1 some inputs
failed and the others were done, 2 an error (nothing done), 130 interrupted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrelib.cli import main
from genrelib.data import synthetic_gtzan

TINY = ["--backend", "mfcc", "--no-augment", "--epochs", "2", "--set", "train.valid_size=0.25", "--quiet"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files and folders the cases need: a tiny GTZAN, one trained run and its damaged copies, bad audio."""
    top = tmp_path_factory.mktemp("faults")
    env = {"GENRELIB_CACHE": str(top / "cache"), "GENRELIB_OUTPUT": str(top / "output")}
    data = synthetic_gtzan(top / "data", per_genre=4, seconds=3.0, seed=0)
    monkeypatch = pytest.MonkeyPatch()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["train", "--data", str(data), "--output-dir", str(top / "runs"), *TINY]) == 0
    monkeypatch.undo()
    run = next((top / "runs").rglob("meta.json")).parent
    good = data / "genres" / "rock" / "rock.00000.wav"
    t = np.arange(22050 * 2) / 22050
    files = {"good": good, "run": run, "data": data}

    def audio(name, y, sr=22050, subtype="FLOAT"):
        sf.write(top / name, np.asarray(y, dtype=np.float32), sr, subtype=subtype)
        files[name.split(".")[0]] = top / name

    nan = 0.3 * np.sin(2 * np.pi * 440 * t)
    nan[1000:1010] = np.nan
    audio("nan.wav", nan)
    audio("short.wav", 0.3 * np.sin(2 * np.pi * 440 * t[:11025]))
    audio("loud.wav", 30 * np.sin(2 * np.pi * 440 * np.arange(22050 * 4) / 22050))
    (top / "text.mp3").write_text("this is not audio\n" * 100)
    (top / "notes.txt").write_text("hello")
    (top / "empty.wav").write_bytes(b"")
    truncated = top / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[: 44 + 2000])
    (top / "a_folder.wav").mkdir()
    (top / "blocker").write_text("a file where a cache folder should go")
    files.update({name.split(".")[0]: top / name for name in ("text.mp3", "notes.txt", "empty.wav", "truncated.wav",
                                                              "a_folder.wav", "blocker")})
    for problem in ("no_history", "no_backend", "bad_patches", "truncated_keras", "running"):
        damaged = top / "damaged" / problem
        shutil.copytree(run, damaged)
        meta = json.loads((damaged / "meta.json").read_text())
        if problem == "no_history":
            (damaged / "history.csv").unlink()
        elif problem == "no_backend":
            del meta["backend"]
        elif problem == "bad_patches":
            meta["n_patches"] = "three"
        elif problem == "truncated_keras":
            for name in ("best.keras", "last.keras"):
                raw = (damaged / name).read_bytes()
                (damaged / name).write_bytes(raw[: len(raw) // 2])
        elif problem == "running":
            meta["status"] = "running"
        (damaged / "meta.json").write_text(json.dumps(meta))
        files[problem] = damaged
    diverged = top / "damaged" / "nan_weights"  # what a diverged run used to leave, marked "complete"
    shutil.copytree(run, diverged)
    import keras

    for name in ("best.keras", "last.keras"):
        network = keras.models.load_model(diverged / name)
        network.set_weights([np.full_like(w, np.nan) for w in network.get_weights()])
        network.save(diverged / name)
    files["nan_weights"] = diverged
    broken_tree = top / "one_genre_missing"
    shutil.copytree(data, broken_tree)
    shutil.rmtree(broken_tree / "genres" / "pop")
    files["one_genre_missing"] = broken_tree
    (top / "bad.json").write_text("{not json")
    files["bad_json"] = top / "bad.json"
    (top / "empty_runs").mkdir()
    files["empty_runs"] = top / "empty_runs"
    return top, env, files


def cli(world, *args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    top, base_env, _ = world
    environment = {**os.environ, **base_env, **(env or {})}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it: unset
    return subprocess.run([sys.executable, "-m", "genrelib", *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=top)


def assert_clean(result: subprocess.CompletedProcess, verb: str, code: int, *fragments: str) -> None:
    """Exit ``code``; every stderr line genrelib's own (``genrelib VERB: ...`` lines - errors, warnings, a summary -
    and their indented continuations)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    own = (f"genrelib {verb}: " if verb else "genrelib: ", "  ")
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert lines, "no message on stderr"
    assert all(line.startswith(own) for line in lines), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr[-2000:])


def f(world, name: str) -> str:
    return str(world[2][name])


# (case, verb, arguments built from the world, exit code, fragments of the message)
CASES = [
    # 1. NaN samples in a file that is not at 16 kHz: named, and the rest of the batch goes on
    ("nan-embed", "embed", lambda w: [f(w, "nan"), f(w, "good"), "--backend", "mfcc", "--quiet",
                                      "--output-dir", f"{w[0]}/nan_out"], 1, ["nan.wav", "NaN or infinite samples"]),
    ("nan-tags", "tags", lambda w: [f(w, "nan")], 1, ["nan.wav: audio has 10 NaN or infinite samples"]),
    ("nan-predict", "predict", lambda w: [f(w, "nan"), "--model", f(w, "run")], 1, ["nan.wav", "NaN"]),
    # 2. a diverging run is an error and is never complete
    ("diverging-train", "train", lambda w: ["--data", f(w, "data"), "--learning-rate", "1e30",
                                            "--output-dir", f"{w[0]}/diverged", *TINY], 2,
     ["training diverged", "lower train.learning_rate"]),
    # 3. a cache that cannot be written: one line naming the file and what to do
    ("cache-not-writable", "embed", lambda w: [f(w, "good"), "--backend", "mfcc", "--quiet"], 2,
     ["blocker/cache", "cannot write (not a directory)", "set GENRELIB_CACHE to another folder"]),
    # 4. damaged run folders: one message per problem
    ("run-no-history", "predict", lambda w: [f(w, "good"), "--model", f(w, "no_history")], 2,
     ["damaged run folder: history.csv is missing"]),
    ("run-no-backend", "predict", lambda w: [f(w, "good"), "--model", f(w, "no_backend")], 2,
     ["meta.json lacks the backend"]),
    ("run-bad-n-patches", "evaluate", lambda w: [f(w, "bad_patches"), "--no-baseline"], 2,
     ["n_patches='three' is not a positive integer"]),
    ("run-truncated-keras", "predict", lambda w: [f(w, "good"), "--model", f(w, "truncated_keras")], 2,
     ["best.keras is not a complete Keras file (truncated?)"]),
    ("run-unfinished", "predict", lambda w: [f(w, "good"), "--model", f(w, "running")], 2,
     ["not a complete training run"]),
    ("run-non-finite-outputs", "predict", lambda w: [f(w, "good"), "--model", f(w, "nan_weights")], 1,
     ["the model gives non-finite probabilities (a diverged run?)"]),
    # 5. option checks, whatever sets the value, before any work
    ("split-negative-seed", "data split", lambda w: ["--data", f(w, "data"), "--seed", "-3", "--output", "s.json"], 2,
     ["argument --seed: '-3' must be a non-negative integer"]),
    ("split-test-size-2", "data split", lambda w: ["--data", f(w, "data"), "--test-size", "2", "--output", "s.json"],
     2, ["argument --test-size: '2' must be a fraction in [0, 1)"]),
    ("train-negative-seed", "train", lambda w: ["--data", f(w, "data"), "--seed", "-1", *TINY], 2,
     ["argument --seed: '-1' must be a non-negative integer"]),
    ("set-zero-epochs", "train", lambda w: ["--data", f(w, "data"), "--set", "train.epochs=0",
                                            "--output-dir", f"{w[0]}/zero", "--quiet"], 2,
     ["train.epochs=0 must be a positive integer"]),
    ("config-file-zero-epochs", "run", lambda w: ["--data", f(w, "data"), "--config", f"{w[0]}/zero.json"], 2,
     ["train.epochs=0 must be a positive integer"]),
    ("validate-report-missing-folder", "data validate", lambda w: ["--data", f(w, "data"), "--report",
                                                                   "/nonexistent/x.csv"], 2,
     ["/nonexistent/x.csv: folder /nonexistent does not exist"]),
    # also: unreadable files and folders named as files, one rule for every verb
    ("text-named-mp3", "tags", lambda w: [f(w, "text")], 1, ["text.mp3: not a readable audio file"]),
    ("folder-as-file", "predict", lambda w: [f(w, "a_folder"), "--model", f(w, "run")], 1,
     ["a_folder.wav: is a folder, not an audio file"]),
    ("short-clip-tags", "tags", lambda w: [f(w, "short")], 1, ["short.wav: clip lasts 0.500 s, shorter than"]),
    ("short-clip-embed", "embed", lambda w: [f(w, "short"), "--backend", "musicnn-msd", "--quiet",
                                             "--output-dir", f"{w[0]}/short_out"], 1, ["short.wav: clip lasts"]),
    ("predict-missing-file", "predict", lambda w: [f"{w[0]}/missing.wav", "--model", f(w, "run")], 1,
     ["missing.wav: no such file"]),
    # our own: the data
    ("data-no-such-folder", "data info", lambda w: ["--data", f"{w[0]}/nowhere"], 2, ["nowhere: no such folder"]),
    ("data-not-gtzan", "data info", lambda w: ["--data", f(w, "empty_runs")], 2, ["no GTZAN layout found"]),
    ("data-genre-missing", "train", lambda w: ["--data", f(w, "one_genre_missing"), *TINY], 2,
     ["genre folder(s) missing: pop"]),
    ("kfold-too-many-folds", "data split", lambda w: ["--data", f(w, "data"), "--protocol", "kfold", "--k", "9",
                                                      "--output", f"{w[0]}/k.json"], 2,
     ["9-fold needs at least 9 tracks of every genre; the smallest genre here has 4"]),
    ("split-output-missing-folder", "data split", lambda w: ["--data", f(w, "data"), "--valid-size", "0.25",
                                                             "--output", "/nonexistent/s.json"], 2,
     ["folder /nonexistent does not exist"]),
    ("download-mini-md5", "data download", lambda w: ["mini", "--md5", "0" * 32], 2,
     ["--url and --md5 apply to `download full` only"]),
    # our own: configuration
    ("config-missing-file", "train", lambda w: ["--data", f(w, "data"), "--config", "absent.json", *TINY], 2,
     ["absent.json: cannot read configuration"]),
    ("config-not-json", "train", lambda w: ["--data", f(w, "data"), "--config", f(w, "bad_json"), *TINY], 2,
     ["cannot read configuration"]),
    ("set-unknown-key", "train", lambda w: ["--data", f(w, "data"), "--set", "train.speed=3", *TINY], 2,
     ["unknown configuration key 'train.speed'"]),
    ("set-not-a-number", "train", lambda w: ["--data", f(w, "data"), "--set", "train.batch_size=many", *TINY], 2,
     ["train.batch_size='many' cannot be read as int"]),
    ("set-bad-on-error", "run", lambda w: ["--data", f(w, "data"), "--set", "data.on_error=ignore"], 2,
     ["data.on_error='ignore' must be one of 'raise', 'skip'"]),
    ("set-without-equals", "train", lambda w: ["--data", f(w, "data"), "--set", "train.epochs", *TINY], 2,
     ["--set 'train.epochs' must look like section.key=value"]),
    ("augment-zero-copies", "augment", lambda w: ["--data", f(w, "data"), "--copies", "0"], 2,
     ["argument --copies"]),
    ("unknown-verb", "", lambda w: ["frobnicate"], 2, ["invalid choice: 'frobnicate'"]),
    # our own: files
    ("unknown-extension", "embed", lambda w: [f(w, "notes"), "--backend", "mfcc", "--quiet",
                                              "--output-dir", f"{w[0]}/txt_out"], 1, ["unknown audio extension '.txt'"]),
    ("empty-file", "predict", lambda w: [f(w, "empty"), "--model", f(w, "run")], 1, ["empty.wav: file is empty"]),
    ("truncated-wav", "embed", lambda w: [f(w, "truncated"), "--backend", "mfcc", "--quiet",
                                          "--output-dir", f"{w[0]}/trunc_out"], 1, ["truncated.wav: truncated"]),
    ("no-runs-at-all", "predict", lambda w: [f(w, "good")], 2, ["no trained model found under runs/"]),
    ("evaluate-empty-folder", "evaluate", lambda w: [f(w, "empty_runs")], 2, ["no complete run directory here"]),
    ("loud-float-file-warns", "tags", lambda w: [f(w, "loud")], 0, ["far outside [-1, 1]"]),
]


@pytest.mark.parametrize("case, verb, arguments, code, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_message(world, case, verb, arguments, code, fragments):
    top = world[0]
    env = {}
    if case == "cache-not-writable":
        env["GENRELIB_CACHE"] = str(Path(f(world, "blocker")) / "cache")
    if case == "no-runs-at-all":
        env["GENRELIB_OUTPUT"] = str(top / "nothing_here")
    if case == "config-file-zero-epochs":
        (top / "zero.json").write_text(json.dumps({"train": {"epochs": 0}}))
    result = cli(world, *verb.split(), *arguments(world), env=env)
    first = next((line for line in result.stderr.splitlines() if line.strip()), "")
    print(f"| {case} | {result.returncode} | {first.replace(str(top), '…')} |")  # `pytest -s`: the table of cases
    assert_clean(result, verb or "", code, *fragments)
    if case == "diverging-train":
        metas = [json.loads(p.read_text()) for p in (top / "diverged").rglob("meta.json")]
        assert metas and all(meta["status"] != "complete" for meta in metas)
    if case in ("set-zero-epochs",):
        assert not (top / "zero").exists()  # refused before any work
    if case == "nan-embed":
        assert list((top / "nan_out").rglob("*.npz")) or "1 of 2" in result.stderr


def test_predict_checks_its_files_before_loading_the_model(world, monkeypatch, capsys):
    import genrelib.predict

    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was loaded although no file could be used")

    monkeypatch.setattr(genrelib.predict, "load_classifier", must_not_load)
    assert main(["predict", f"{world[0]}/missing.wav", f(world, "a_folder")]) == 1
    assert capsys.readouterr().err.count("genrelib predict: error: ") == 2


def test_finding_runs_skips_unfinished_ones_and_says_so(world, tmp_path):
    from genrelib import train

    shutil.copytree(f(world, "run"), tmp_path / "group" / "seed0-fold0")
    shutil.copytree(f(world, "running"), tmp_path / "group" / "seed1-fold0")
    with pytest.warns(UserWarning, match=r"1 unfinished training run\(s\) skipped \(interrupted or diverged\), "
                                         r"e\.g\. .*seed1-fold0"):
        assert train.find_runs(tmp_path) == [tmp_path / "group" / "seed0-fold0"]


def test_the_good_path_prints_nothing_but_genrelib_on_stderr(world):
    """TensorFlow loads, trains and predicts: not one line of its native log reaches the user."""
    result = cli(world, "predict", f(world, "good"), "--model", f(world, "run"))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "rock.00000.wav" in result.stdout


def test_kill_9_of_augment_leaves_no_worker_behind(world, tmp_path):
    top, env, files = world
    environment = {**os.environ, **env, "GENRELIB_CACHE": str(tmp_path / "cache")}
    data = synthetic_gtzan(tmp_path / "data", per_genre=10, seconds=3.0, seed=0)  # the paper split needs 100
    command = [sys.executable, "-m", "genrelib", "augment", "--data", str(data), "--n-jobs", "2",
               "--output-dir", str(tmp_path / "out"), "--quiet"]
    parent = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    for _ in range(600):  # until its workers are busy (at most a minute)
        servers = [pid for pid in _descendants(parent.pid) if "forkserver import main" in _cmdline(pid)]
        workers = servers + [worker for server in servers for worker in _descendants(server)]
        if len(workers) > len(servers) or parent.poll() is not None:
            break
        time.sleep(0.1)
    assert workers, "the augmentation never started its workers"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        if not any(_alive(pid) for pid in workers):
            break
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def _descendants(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children + [grandchild for child in children for grandchild in _descendants(child)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
