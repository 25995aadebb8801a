"""Sturm's artist index and the artist-disjoint protocol (genrelib.data.artist_index / split_by_artist)."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from genrelib import data
from genrelib.config import GENRES
from genrelib.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
SHARED_INDEX = ROOT.parent / "shared" / "data" / "gtzan_index" / "sturm_GTZANindex.txt"


def _artists_by_hand() -> dict[str, str]:
    """An independent read of the shipped file: ``<genre>.000NN.wav ::: artist ::: title`` lines."""
    text = (ROOT / "genrelib" / "resources" / "sturm_GTZANindex.txt").read_text(encoding="utf-8")
    return {line.split(":::")[0].strip()[:-4]: line.split(":::")[1].strip()
            for line in text.splitlines() if ":::" in line and not line.startswith("#")}


def test_shipped_index_is_the_published_file_byte_for_byte():
    shipped = (ROOT / "genrelib" / "resources" / "sturm_GTZANindex.txt").read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == data.ARTIST_INDEX_SHA256
    if SHARED_INDEX.exists():
        assert shipped == SHARED_INDEX.read_bytes()


def test_artist_index_has_every_track_and_names_the_unknown_ones():
    index = data.artist_index()
    assert len(index) == 1000 and index["track_id"].is_unique
    assert set(index["track_id"]) == set(data.gtzan_index()["track_id"])
    assert index["artist"].isna().sum() == 81  # Sturm: 81 tracks without an artist
    by_hand = _artists_by_hand()
    assert all((by_hand[t] or None) == a for t, a in zip(index["track_id"], index["artist"]))
    assert index.set_index("track_id").loc["blues.00012", "title"] == "Cross Road Blues"


def test_mini_set_index_carries_artists(mini_root):
    index = data.load_gtzan(mini_root)
    assert {"artist", "title"} <= set(index.columns)
    assert index.set_index("track_id").loc["blues.00000", "artist"] == "John Lee Hooker"
    assert data.single_artist_genres(index) == {"blues": "John Lee Hooker", "classical": "JS Bach",
                                                "reggae": "Bob Marley", "rock": "Morphine"}
    counts = index[index["genre"] == "pop"]["artist"].value_counts()
    assert counts["Alanis Morissette"] == 7


def _check_folds(folds, index, k):
    artist_of = {t: (a if isinstance(a, str) else f"?{t}") for t, a in zip(index["track_id"], index["artist"])}
    untestable = data.single_artist_genres(index)
    tested = [t for f in folds for t in f.test]
    testable_ids = {t for t, g in zip(index["track_id"], index["genre"]) if g not in untestable}
    assert len(folds) == k
    assert sorted(tested) == sorted(testable_ids)  # each testable track tested exactly once
    for fold in folds:
        learn = {artist_of[t] for t in (*fold.train, *fold.valid)}
        assert not learn & {artist_of[t] for t in fold.test}, f"fold {fold.fold} shares an artist"
        assert not {artist_of[t] for t in fold.train} & {artist_of[t] for t in fold.valid}
        assert set(fold.train) | set(fold.valid) | set(fold.test) == set(index["track_id"])
        assert all(t.split(".")[0] not in untestable for t in (*fold.test, *fold.valid))
    return untestable


def test_artist_split_of_the_mini_set_is_artist_disjoint_and_says_what_it_cannot_test(mini_root):
    index = data.load_gtzan(mini_root)
    folds = data.split_by_artist(index, k=5, seed=0)
    untestable = _check_folds(folds, index, 5)
    assert sorted(untestable) == ["blues", "classical", "reggae", "rock"]
    assert "never tested: blues (John Lee Hooker), classical (JS Bach), reggae (Bob Marley), rock (Morphine)" \
        in folds[0].notes
    assert {f.protocol for f in folds} == {"artist"}
    assert [f.test for f in folds] == [f.test for f in data.split_by_artist(index, k=5, seed=0)]
    assert [f.test for f in folds] != [f.test for f in data.split_by_artist(index, k=5, seed=1)]


def test_artist_split_of_full_gtzan_tests_every_genre():
    index = data.gtzan_index().merge(data.artist_index(), on="track_id")
    folds = data.split_by_artist(index, k=10, seed=0)
    assert _check_folds(folds, index, 10) == {}
    genres_per_fold = [set(t.split(".")[0] for t in f.test) for f in folds]
    for genre in GENRES:  # blues has 9 artists in all, so one fold of 10 cannot test it
        assert sum(genre in found for found in genres_per_fold) >= 9, genre
    assert all(80 <= len(f.test) <= 120 for f in folds)


def test_an_artist_of_a_single_artist_genre_never_reaches_a_test_side():
    index = pd.DataFrame({
        "track_id": [f"blues.{i:05d}" for i in range(4)] + [f"pop.{i:05d}" for i in range(6)],
        "genre": ["blues"] * 4 + ["pop"] * 6,
        "artist": ["Hooker"] * 4 + ["Hooker", "A", "B", "C", "D", "E"],
    })
    folds = data.split_by_artist(index, k=2, seed=0, valid_size=0)
    assert all("pop.00000" in f.train and "pop.00000" not in f.test for f in folds)
    assert sorted(t for f in folds for t in f.test) == [f"pop.{i:05d}" for i in range(1, 6)]


def test_too_few_artists_is_a_clear_error():
    index = pd.DataFrame({"track_id": [f"jazz.{i:05d}" for i in range(6)] + [f"pop.{i:05d}" for i in range(6)],
                          "genre": ["jazz"] * 6 + ["pop"] * 6, "artist": list("AAABBBCCCDDD")})
    with pytest.raises(DataError, match="at least 5 artists"):
        data.split_by_artist(index, k=5)
    with pytest.raises(DataError, match="7 folds need at least 7 tracks of every testable genre; jazz has 6"):
        data.split_by_artist(index, k=7)


def test_default_folds_fit_the_smallest_testable_genre(mini_root):
    index = data.example_tracks(data.load_gtzan(mini_root), per_genre=4)
    folds = data.split_by_artist(index)
    assert len(folds) == 4 and "4-fold by artist" in folds[0].notes
    assert len(data.split_by_artist(data.load_gtzan(mini_root))) == 5


def test_cli_writes_one_artist_disjoint_file_per_fold(mini_root, tmp_path):
    output = tmp_path / "artist.json"
    result = subprocess.run([sys.executable, "-m", "genrelib", "data", "split", "--data", str(mini_root),
                             "--protocol", "artist", "--k", "5", "--output", str(output)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    files = sorted(tmp_path.glob("artist_fold*.json"))
    assert len(files) == 5
    tested = [t for f in files for t in json.loads(f.read_text())["test"]]
    assert len(tested) == len(set(tested)) == 60  # the 6 genres with more than one artist, 10 tracks each


def test_artists_per_genre_of_the_mini_set(mini_root):
    table = data.artists_per_genre(data.load_gtzan(mini_root))
    assert table.loc["blues"].to_dict() == {"tracks": 10, "artists": 1, "unknown": 0, "top_artist": "John Lee Hooker",
                                            "top_tracks": 10}
    assert table.loc["jazz", "artists"] == 3 and table.loc["jazz", "top_artist"] == "James Carter"
    assert table.loc["metal", "unknown"] == 3  # three metal tracks of the mini set have no artist in Sturm's index
    assert (table["tracks"] == 10).all()


def test_the_mini_tracks_the_fault_filter_leaves_out_are_repeated_songs(mini_root):
    index = data.load_gtzan(mini_root)
    excluded = data.fault_filtered_exclusions(index)
    filtered = data.split_fault_filtered(index)
    kept = {*filtered.train, *filtered.valid, *filtered.test}
    assert sorted(excluded["track_id"]) == sorted(set(index["track_id"]) - kept)
    assert len(excluded) == 7
    by_id = excluded.set_index("track_id")
    assert by_id.loc["reggae.00003", "same_song_as"] == "reggae.00054"  # both "Three Little Birds"
    assert (excluded["same_song_as"] != "").all()
