"""genrelib.storage: atomic writes, digests, parameter keys, cache folder."""

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest

from genrelib import storage


def test_atomic_path_renames_on_success_and_cleans_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.npz"
    with storage.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".npz") and tmp != target
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    with pytest.raises(RuntimeError):
        with storage.atomic_path(tmp_path / "never.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert not (tmp_path / "never.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]  # no temporary left behind


def test_atomic_save_npz_round_trip(tmp_path):
    path = storage.atomic_save_npz(tmp_path / "clip.npz", embedding=np.eye(3, dtype=np.float32),
                                   timestamps=np.arange(3.0))
    with np.load(path) as loaded:
        np.testing.assert_array_equal(loaded["embedding"], np.eye(3))


def test_file_digest_matches_hashlib(tmp_path):
    payload = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(payload)
    assert storage.file_digest(tmp_path / "f") == hashlib.sha256(payload).hexdigest()
    assert storage.file_digest(tmp_path / "f", algorithm="md5") == hashlib.md5(payload).hexdigest()


def test_params_key_is_order_independent_and_sensitive():
    assert storage.params_key({"a": 1, "b": 2}) == storage.params_key({"b": 2, "a": 1})
    assert storage.params_key({"a": 1}) != storage.params_key({"a": 2})
    assert len(storage.params_key({"a": 1}, length=8)) == 8


def test_cache_and_output_dirs_follow_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRELIB_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("GENRELIB_OUTPUT", str(tmp_path / "o"))
    assert storage.cache_dir("weights") == tmp_path / "c" / "weights" and (tmp_path / "c" / "weights").is_dir()
    assert storage.output_dir("figures") == tmp_path / "o" / "figures"
    monkeypatch.delenv("GENRELIB_OUTPUT")
    monkeypatch.chdir(tmp_path)
    assert storage.output_dir("results", create=False) == Path.cwd() / "results"


def test_atomic_write_json_round_trip_leaves_no_temporary(tmp_path):
    import json

    path = storage.atomic_write_json(tmp_path / "meta.json", {"where": tmp_path, "n": 3}, indent=2)
    assert json.loads(path.read_text()) == {"where": str(tmp_path), "n": 3}
    assert path.read_text().startswith('{\n  "where"') and path.read_text().endswith("}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_atomic_write_csv_round_trip_without_index(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"track_id": ["blues.00000", "rock.00001"], "accuracy": [0.5, 1.0]}, index=[7, 9])
    path = storage.atomic_write_csv(tmp_path / "runs.csv", frame)
    pd.testing.assert_frame_equal(pd.read_csv(path), frame.reset_index(drop=True))
    assert path.read_text().splitlines()[0] == "track_id,accuracy"
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    from genrelib.errors import StorageError

    monkeypatch.setenv("GENRELIB_CACHE", str(tmp_path / "cache"))
    target = storage.cache_dir("embeddings") / "clip.npz"

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "replace", disk_full)
    with pytest.raises(StorageError, match=r"clip\.npz: cannot write \(no space left on device\): free space or set "
                                           r"GENRELIB_CACHE to another folder; nothing partial was left behind$"):
        storage.atomic_save_npz(target, embedding=np.zeros((2, 3)))
    assert list(target.parent.iterdir()) == []
    with pytest.raises(StorageError, match=r"out\.json: cannot write \(no space left on device\): free space or "
                                           r"write to another folder"):
        storage.atomic_write_json(tmp_path / "out.json", {"a": 1})


def test_a_cache_folder_that_cannot_be_made_is_one_line(tmp_path, monkeypatch):
    from genrelib.errors import StorageError

    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("GENRELIB_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(StorageError, match=r"file/cache/weights: cannot write \(not a directory\): check the folder, "
                                           r"or set GENRELIB_CACHE to another folder"):
        storage.cache_dir("weights")


def test_neutral_paths_names_this_machines_folders_longest_first(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRELIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GENRELIB_CACHE", str(tmp_path / "data" / "cache"))
    replacements = storage.machine_paths(tmp_path / "checkout")
    text = f"{tmp_path}/data/cache/x.npz {tmp_path}/data/blues.wav {tmp_path}/checkout/results {tmp_path}/other"
    below_tmp = tmp_path.resolve().relative_to(Path(tempfile.gettempdir()).resolve())
    assert storage.neutral_paths(text, replacements) == \
        f"$GENRELIB_CACHE/x.npz $GENRELIB_DATA/blues.wav ./results $TMPDIR/{below_tmp}/other"


def test_neutral_paths_names_a_folder_by_its_link_and_its_target_and_the_home_folder(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("GENRELIB_DATA", str(tmp_path / "link"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    replacements = storage.machine_paths(tmp_path / "checkout")
    text = f"{tmp_path}/link/blues.wav {(tmp_path / 'real').resolve()}/jazz.wav {tmp_path}/home/.config/x"
    assert storage.neutral_paths(text, replacements) == "$GENRELIB_DATA/blues.wav $GENRELIB_DATA/jazz.wav ~/.config/x"


def test_a_kernel_started_in_the_notebooks_folder_writes_to_the_projects_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("GENRELIB_OUTPUT", raising=False)
    project = tmp_path / "checkout"
    (project / "genrelib").mkdir(parents=True)
    (project / "genrelib" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text('[project]\nname = "genrelib"\n')
    (project / "notebooks").mkdir()
    monkeypatch.chdir(project / "notebooks")
    assert storage.output_dir("figures") == project / "figures" and (project / "figures").is_dir()
    assert not (project / "notebooks" / "figures").exists()
    assert storage.output_dir("runs", create=False) == project / "runs"
    monkeypatch.setenv("GENRELIB_OUTPUT", str(tmp_path / "o"))  # an explicit folder still wins
    assert storage.output_dir("results", create=False) == tmp_path / "o" / "results"
    monkeypatch.delenv("GENRELIB_OUTPUT")
    for other in (tmp_path / "notebooks", project / "genrelib"):  # no checkout above, or not its notebooks/
        other.mkdir(exist_ok=True)
        monkeypatch.chdir(other)
        assert storage.output_dir("results", create=False) == other / "results"


def test_committed_results_name_no_folder_of_this_machine():
    root = Path(__file__).resolve().parents[1]
    places = [path for path in storage.machine_paths(root) if len(path) > 1]  # "/" would match everything
    for path in sorted((root / "results").rglob("*")):
        if path.suffix in {".json", ".md", ".csv", ".txt"}:
            text = path.read_text(encoding="utf-8")
            named = [place for place in places if place in text]
            assert not named, f"{path.relative_to(root)} names {named[0]}: write it through storage.neutral_paths"
