"""genrelib.data: layouts, bad folders, validate, splits, synthetic set (downloads: test_download.py)."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from genrelib import data
from genrelib.config import GENRES
from genrelib.errors import DataError, GenrelibWarning, ParameterError

ROOT = Path(__file__).resolve().parents[1]


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


# ---------------------------------------------------------------------------------------------- layouts

def test_load_tiny_tree(tiny_gtzan):
    index = data.load_gtzan(tiny_gtzan)
    assert len(index) == 30 and sorted(index["genre"].unique()) == sorted(GENRES)
    assert list(index.columns[:3]) == ["track_id", "genre", "path"]
    assert index["track_id"].is_monotonic_increasing
    assert (index["samplerate"] == 22050).all() and np.allclose(index["duration"], 2.0)


def test_kaggle_layout_and_hip_hop_spelling(tiny_gtzan, tmp_path):
    base = tmp_path / "Data" / "genres_original"
    shutil.copytree(tiny_gtzan / "genres", base)
    (base / "hiphop").rename(base / "hip-hop")
    for path in (base / "hip-hop").iterdir():
        path.rename(path.with_name(path.name.replace("hiphop", "hip-hop")))
    index = data.load_gtzan(tmp_path)
    assert (index["genre"] == "hiphop").sum() == 3
    assert "hiphop.00000" in set(index["track_id"])


def test_root_may_be_the_genres_folder_itself(tiny_gtzan):
    assert len(data.load_gtzan(tiny_gtzan / "genres")) == 30


def test_metadata_files_beside_genres_are_ignored(tiny_gtzan, tmp_path):
    root = copy_tree(tiny_gtzan, tmp_path / "g")
    (root / "genres" / "README.md").write_text("mini set")
    (root / "genres" / "bextract_single.mf").write_text("x")
    (root / "genres" / "blues" / ".DS_Store").write_bytes(b"\0")
    assert len(data.load_gtzan(root)) == 30


def test_missing_genre_folder(tiny_gtzan, tmp_path):
    root = copy_tree(tiny_gtzan, tmp_path / "g")
    shutil.rmtree(root / "genres" / "reggae")
    with pytest.raises(DataError, match=r"genres: genre folder\(s\) missing: reggae"):
        data.load_gtzan(root)


def test_empty_genre_folder(tiny_gtzan, tmp_path):
    root = copy_tree(tiny_gtzan, tmp_path / "g")
    for path in (root / "genres" / "jazz").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"jazz: genre folder is empty"):
        data.load_gtzan(root)


@pytest.mark.parametrize("name", ["notes.txt", "blues.1.wav", "rock.00001.wav", "subdir"])
def test_stray_entry_in_genre_folder(tiny_gtzan, tmp_path, name):
    root = copy_tree(tiny_gtzan, tmp_path / "g")
    stray = root / "genres" / "blues" / name
    stray.mkdir() if name == "subdir" else stray.write_text("x")
    with pytest.raises(DataError, match=rf"blues/{name}: stray entry"):
        data.load_gtzan(root)


def test_unknown_folder_and_wrong_layout(tiny_gtzan, tmp_path):
    root = copy_tree(tiny_gtzan, tmp_path / "g")
    (root / "genres" / "polka").mkdir()
    with pytest.raises(DataError, match=r"polka: unexpected folder, not a GTZAN genre"):
        data.load_gtzan(root)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "blues.00000.wav").write_bytes(b"x")
    with pytest.raises(DataError, match="no GTZAN layout found"):
        data.load_gtzan(tmp_path / "flat")


def test_unknown_extension_in_genre_folder(tiny_gtzan, tmp_path):
    root = copy_tree(tiny_gtzan, tmp_path / "g")
    (root / "genres" / "pop" / "pop.00007.xyz").write_bytes(b"x")
    with pytest.raises(DataError, match=r"pop.00007.xyz: unknown audio extension"):
        data.load_gtzan(root)


def test_duplicate_track_in_two_encodings(tiny_gtzan, tmp_path):
    root = copy_tree(tiny_gtzan, tmp_path / "g")
    y, sr = sf.read(root / "genres" / "disco" / "disco.00000.wav")
    sf.write(root / "genres" / "disco" / "disco.00000.flac", y, sr)
    with pytest.raises(DataError, match="disco.00000"):
        data.load_gtzan(root)


def test_unreadable_track_fails_unless_skipped(tiny_gtzan, tmp_path):
    """The known fault: jazz.00054 is unreadable in a widespread copy."""
    root = copy_tree(tiny_gtzan, tmp_path / "g")
    (root / "genres" / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(DataError, match=r"jazz.00054.wav: not a readable audio file.*on_error='skip'"):
        data.load_gtzan(root)
    with pytest.warns(GenrelibWarning, match=r"30 tracks; skipped: jazz.00054 \(unreadable\)"):
        index = data.load_gtzan(root, on_error="skip")
    assert len(index) == 30 and "jazz.00054" not in set(index["track_id"])
    assert [item["track_id"] for item in index.attrs["skipped"]] == ["jazz.00054"]
    assert data.skipped_tracks(index) == "jazz.00054 (unreadable)"
    assert data.skipped_tracks(data.load_gtzan(tiny_gtzan)) == ""
    report = data.validate(root, expected="found")
    row = report.set_index("track_id").loc["jazz.00054"]
    assert not row["ok"] and not row["decodable"] and "not a readable audio file" in row["problem"]


def test_resolve_root_order(tiny_gtzan, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENRELIB_DATA", str(tiny_gtzan))
    assert data.resolve_root("/somewhere") == (Path("/somewhere"), "argument")
    assert data.resolve_root() == (tiny_gtzan, "GENRELIB_DATA")
    monkeypatch.delenv("GENRELIB_DATA")
    with pytest.raises(DataError, match="no GTZAN data found"):
        data.resolve_root()
    (tmp_path / "data" / "gtzan").mkdir(parents=True)
    assert data.resolve_root()[1] == "./data/gtzan"


def test_synthetic_fallback_warns_loudly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENRELIB_DATA", raising=False)
    monkeypatch.setattr(data, "synthetic_gtzan", lambda dest, **kw: Path(dest))
    with pytest.warns(GenrelibWarning, match="SYNTHETIC"):
        _, source = data.resolve_root(allow_synthetic=True)
    assert source == "synthetic"


# --------------------------------------------------------------------------------------------- validate

def test_validate_checksums_against_the_index(tiny_gtzan, tmp_path, monkeypatch):
    root = copy_tree(tiny_gtzan, tmp_path / "g")
    files = sorted((root / "genres").glob("*/*.wav"))
    table = pd.DataFrame({"track_id": [p.stem for p in files], "genre": [p.parent.name for p in files],
                          "path": [str(p) for p in files],
                          "md5": [hashlib.md5(p.read_bytes()).hexdigest() for p in files]})
    monkeypatch.setattr(data, "gtzan_index", lambda: table)
    # corrupt one byte in the middle of a file: still decodable, but not the published file
    victim = root / "genres" / "rock" / "rock.00001.wav"
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    (root / "genres" / "pop" / "pop.00002.wav").unlink()
    report = data.validate(root, expected="full", duration_range=(1.9, 2.1)).set_index("track_id")
    assert report.loc["blues.00000", "checksum"] == "ok" and report.loc["blues.00000", "ok"]
    assert report.loc["rock.00001", "checksum"] == "mismatch" and not report.loc["rock.00001", "ok"]
    assert report.loc["pop.00002", "problem"] == "missing" and not report.loc["pop.00002", "exists"]
    assert report["ok"].sum() == 28


def test_validate_other_encodings_are_unknown_not_corrupt(tiny_gtzan, tmp_path):
    root = tmp_path / "flac"
    for wav in (tiny_gtzan / "genres").glob("*/*.wav"):
        target = root / "genres" / wav.parent.name / f"{wav.stem}.flac"
        target.parent.mkdir(parents=True, exist_ok=True)
        y, sr = sf.read(wav)
        sf.write(target, y, sr)
    with pytest.warns(GenrelibWarning, match="no file could be checksum-verified"):
        report = data.validate(root, expected="found")
    assert set(report["checksum"]) == {"unknown"}
    # 2 s clips are usable but not GTZAN-length: reported, never called corrupt
    assert report["decodable"].all() and report["problem"].str.contains("expected 29.0-31.0 s").all()


@pytest.mark.mini
def test_mini_set_loads_and_validates(mini_root):
    index = data.load_gtzan(mini_root)
    assert len(index) == 100 and index["genre"].nunique() == 10
    assert (index.groupby("genre").size() == 10).all()
    report = data.validate(mini_root)
    assert len(report) == 100 and report["ok"].all(), report[~report["ok"]]
    assert (report["checksum"] == "ok").all()  # the shipped Ogg copies match their published SHA-256


# ----------------------------------------------------------------------------------------------- splits

def test_split_random_is_stratified_75_25_by_track():
    index = data.gtzan_index()
    split = data.split_random(index, test_size=0.25, valid_size=0.1, seed=3)
    assert (len(split.train), len(split.valid), len(split.test)) == (650, 100, 250)
    counts = split.summary()
    assert (counts["test"] == 25).all() and (counts["valid"] == 10).all() and (counts["train"] == 65).all()
    assert set(split.train) | set(split.valid) | set(split.test) == set(index["track_id"])
    assert split.seed == 3 and split.protocol == "paper"


def test_split_random_seeds():
    index = data.gtzan_index()
    assert data.split_random(index, seed=1) == data.split_random(index, seed=1)
    assert data.split_random(index, seed=1).test != data.split_random(index, seed=2).test


def test_split_refuses_segments_and_overlap():
    index = data.gtzan_index()
    with pytest.raises(ParameterError, match="duplicate track ids"):
        data.split_random(pd.concat([index, index.head(3)]))
    with pytest.raises(DataError, match="on two sides: a"):
        data.Split(("a", "b"), (), ("a",), protocol="x")


def test_split_json_round_trip(tmp_path):
    split = data.split_random(data.gtzan_index(), seed=5)
    split.to_json(tmp_path / "s.json")
    assert data.Split.from_json(tmp_path / "s.json") == split


def test_fault_filtered_split_counts_and_files():
    split = data.split_fault_filtered()
    assert (len(split.train), len(split.valid), len(split.test)) == (443, 197, 290)
    shared = ROOT.parent / "shared" / "data" / "splits"
    if shared.is_dir():  # the package data is byte-identical to the published lists
        for side in ("train", "valid", "test"):
            shipped = ROOT / "genrelib" / "resources" / "splits" / f"{side}_filtered.txt"
            assert shipped.read_bytes() == (shared / f"{side}_filtered.txt").read_bytes()


def test_fault_filtered_restricted_to_an_index(mini_root):
    split = data.split_fault_filtered(data.load_gtzan(mini_root))
    # the mini set's jazz ids are 00000-00002, 00004-00008, 00011, 00012; 7 of its tracks are filtered out
    assert (len(split.train), len(split.valid), len(split.test)) == (40, 49, 4)


def test_fault_filtered_names_the_absent_tracks(mini_root):
    index = data.load_gtzan(mini_root)
    notes = data.split_fault_filtered(index[index["track_id"] != "blues.00000"]).notes
    listed = {Path(line).stem for side in ("train", "valid", "test")
              for line in (ROOT / "genrelib" / "resources" / "splits" / f"{side}_filtered.txt").read_text().split()}
    absent = sorted(listed - set(index["track_id"]) | {"blues.00000"})
    assert f"{len(absent)} of its {len(listed)} tracks absent: {', '.join(absent[:10])}, ..." in notes
    assert data.split_fault_filtered().notes == "Kereliuk et al. 2015 fault-filtered artist-disjoint split"


@pytest.mark.parametrize("level", ["unzipped", "Data", "genres_original"])
def test_kaggle_copy_at_every_level_with_its_broken_jazz_track(tiny_gtzan, tmp_path, level):
    top = tmp_path / "gtzan-dataset-music-genre-classification"
    shutil.copytree(tiny_gtzan / "genres", top / "Data" / "genres_original")
    (top / "Data" / "genres_original" / "jazz" / "jazz.00054.wav").write_bytes(b"\0" * 2048)
    (top / "Data" / "images_original" / "blues").mkdir(parents=True)
    (top / "Data" / "images_original" / "blues" / "blues00000.png").write_bytes(b"png")
    (top / "Data" / "features_30_sec.csv").write_text("filename,label\n")
    (top / "Data" / "features_3_sec.csv").write_text("filename,label\n")
    root = {"unzipped": top, "Data": top / "Data", "genres_original": top / "Data" / "genres_original"}[level]
    with pytest.warns(GenrelibWarning, match="skipped: jazz.00054"):
        index = data.load_gtzan(root, on_error="skip")
    assert len(index) == 30 and index["path"].str.contains("genres_original").all()


def test_kfold_covers_every_track_once():
    index = data.gtzan_index()
    folds = data.kfold(index, k=10, seed=0)
    tests = [t for fold in folds for t in fold.test]
    assert sorted(tests) == sorted(index["track_id"]) and len(folds) == 10
    for fold in folds:
        assert (fold.summary()["test"] == 10).all()
        assert not set(fold.valid) & set(fold.test) and not set(fold.train) & set(fold.test)
    with pytest.raises(ParameterError):
        data.kfold(index, k=1)


# -------------------------------------------------------------------------------------------- synthetic

def test_synthetic_set_is_learnable(tiny_gtzan):
    """Genres of the synthetic set are separable by simple features (what tests rely on)."""
    import librosa
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    index = data.load_gtzan(tiny_gtzan)
    features = []
    for path in index["path"]:
        y, sr = sf.read(path, dtype="float32")
        features.append(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13).mean(axis=1))
    scores = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                             np.array(features), index["genre"], cv=3)
    assert scores.mean() > 0.9


def test_synthetic_set_is_deterministic(tmp_path):
    a = data.synthetic_gtzan(tmp_path / "a", per_genre=1, seconds=1.0, seed=7)
    b = data.synthetic_gtzan(tmp_path / "b", per_genre=1, seconds=1.0, seed=7)
    for path in (a / "genres").glob("*/*.wav"):
        assert path.read_bytes() == (b / path.relative_to(a)).read_bytes()
