"""Both GTZAN copies users have, end to end at a small size (CI's stand-in for the full-size benchmark):
``tools/make_fullsize_gtzan.py``, a download from 127.0.0.1 with ``--url``, an interrupted unpack and its resume,
``validate``, and ``genrelib run --on-error skip`` on the Kaggle tree with its unreadable ``jazz.00054.wav``."""

import functools
import hashlib
import http.server
import importlib.util
import json
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from genrelib import data
from genrelib.cli import main
from genrelib.config import Config

ROOT = Path(__file__).resolve().parents[1]
RUN = ["--backend", "mfcc", "--set", "train.valid_size=0.25", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def standin():
    spec = importlib.util.spec_from_file_location("make_fullsize_gtzan", ROOT / "tools" / "make_fullsize_gtzan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRELIB_OUTPUT", str(tmp_path / "output"))
    return tmp_path / "output"


def test_every_variant_is_distinct_deterministic_and_as_long_as_its_clip(standin, tiny_gtzan):
    from genrelib import audio

    y = audio.load(tiny_gtzan / "genres" / "disco" / "disco.00000.wav", sr=standin.SAMPLE_RATE)
    variants = [standin.variant(y, genre="disco", number=n) for n in range(4)]
    assert all(v.shape == y.shape and v.dtype == np.float32 and np.abs(v).max() <= 1 for v in variants)
    assert np.array_equal(variants[1], standin.variant(y, genre="disco", number=1))
    pairs = [(a, b) for a in [y, *variants] for b in variants if a is not b]
    assert all(not np.allclose(a, b, atol=1e-3) for a, b in pairs)


def test_archive_copy_downloaded_interrupted_resumed_validated_and_run(standin, tiny_gtzan, tmp_path, outputs,
                                                                       monkeypatch, capsys):
    archive = standin.make_archive(tiny_gtzan, tmp_path / "served", per_genre=4)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/genres.tar.gz"
    download = ["data", "download", "full", "--dest", str(tmp_path / "gtzan"), "--url", url,
                "--md5", hashlib.md5(archive.read_bytes()).hexdigest(), "--quiet"]
    try:
        with monkeypatch.context() as patch:
            extract = tarfile.TarFile.extract
            members = []

            def killed_part_way(self, member, *args, **kwargs):
                members.append(member)
                if len(members) > 20:
                    raise KeyboardInterrupt
                return extract(self, member, *args, **kwargs)

            patch.setattr(tarfile.TarFile, "extract", killed_part_way)
            assert main(download) == 130
        assert not (tmp_path / "gtzan" / "genres").exists()
        assert main(download) == 0
    finally:
        server.shutdown()
    report = data.validate(tmp_path / "gtzan", expected="found", duration_range=(1.9, 2.1))
    assert len(report) == 40 and set(report["checksum"]) == {"archive"} and report["ok"].all()
    assert main(["run", "--data", str(tmp_path / "gtzan"), "--protocols", "paper", "kfold", "--set", "train.folds=2",
                 "--no-augment", *RUN]) == 0
    rows = json.loads((outputs / "results" / "table3_accuracy.json").read_text())["rows"]
    assert {row["data"] for row in rows} == {"gtzan (40 tracks)"}
    assert {row["protocol"] for row in rows} == {"paper", "kfold (2-fold)"}


def test_kaggle_copy_fails_on_its_broken_track_unless_skipped(standin, tiny_gtzan, tmp_path, outputs, capsys):
    tree = standin.make_kaggle(tiny_gtzan, tmp_path / "kaggle", per_genre=4) / "Data"
    assert (tree / "images_original").is_dir() and (tree / "features_30_sec.csv").is_file()
    capsys.readouterr()  # the builder's progress bars
    command = ["run", "--data", str(tree), "--protocols", "paper", *RUN]
    assert main(command) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "jazz.00054.wav: not a readable audio file" in error
    assert "--on-error skip" in error
    assert main([*command, "--on-error", "skip"]) == 0
    printed = capsys.readouterr()
    assert "genrelib run: warning: " in printed.err and "40 tracks; skipped: jazz.00054 (unreadable)" in printed.err
    assert "Data (40 tracks; skipped: jazz.00054 (unreadable))" in printed.out
    rows = json.loads((outputs / "results" / "table3_accuracy.json").read_text())["rows"]
    assert {row["data"] for row in rows} == {"Data (40 tracks; skipped: jazz.00054 (unreadable))"}
    assert {row["augmentation"] for row in rows if row["model"] == "paper CNN"} == {"on"}
    meta = json.loads(next((outputs / "runs").rglob("meta.json")).read_text())
    assert meta["data"]["skipped"] == "jazz.00054 (unreadable)" and meta["data"]["n_tracks"] == 40


def test_the_configuration_setting_is_the_flag_and_leaves_run_keys_alone(standin, tiny_gtzan, tmp_path, outputs,
                                                                         capsys):
    tree = standin.make_kaggle(tiny_gtzan, tmp_path / "kaggle", per_genre=4) / "Data"
    assert main(["run", "--data", str(tree), "--protocols", "paper", "--no-augment", "--set", "data.on_error=skip",
                 *RUN]) == 0
    skipping = Config().replace(**{"data.on_error": "skip"})
    assert skipping.data.on_error == "skip" and skipping.keyed_settings() == Config().keyed_settings()
    assert main(["data", "info", "--data", str(tree), "--on-error", "skip"]) == 0
    split = ["data", "split", "--data", str(tree), "--on-error", "skip", "--output", str(tmp_path / "s.json")]
    assert main([*split, "--valid-size", "0.25"]) == 0
    assert "jazz.00054" not in (tmp_path / "s.json").read_text()
    assert main(split) == 2  # 4 validation tracks for 10 genres: one line, no traceback
    assert "the paper split of 40 tracks (test_size=0.25, valid_size=0.1) leaves a side with fewer tracks than genres" \
        in capsys.readouterr().err
