"""The checksum tables genrelib ships, against the real files they describe (the download and validate tests
replace them with tables of synthetic files; these tests check the tables themselves)."""

import hashlib
from pathlib import Path

import pytest

from genrelib import data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def shared():
    """The project's ../shared/data (the real Ogg mini set and the published tables), else skip."""
    if not (SHARED / "gtzan_mini" / "SHA256SUMS.ogg").is_file():
        pytest.skip("../shared/data is not beside this checkout")
    return SHARED

def sums_file(path: Path) -> dict[str, str]:
    """relative path -> digest of a ``sha256sum`` listing, parsed here independently of genrelib."""
    rows = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {name.strip(): digest for digest, name in rows}


def test_shipped_mini_tables_are_the_published_ones(shared):
    for shipped, published in [("gtzan_mini_SHA256SUMS", "SHA256SUMS"),
                               ("gtzan_mini_ogg_SHA256SUMS", "SHA256SUMS.ogg")]:
        table = sums_file(shared / "gtzan_mini" / published)
        assert len(table) == 100
        assert data._sha256_table(shipped) == {Path(name).stem: digest for name, digest in table.items()}


def test_ogg_table_matches_every_real_mini_file_and_validate_says_ok(shared):
    table = data._sha256_table("gtzan_mini_ogg_SHA256SUMS")
    mini = shared / "gtzan_mini"
    files = sorted((mini / "genres").glob("*/*.ogg"))
    assert len(files) == 100
    assert {path.stem: hashlib.sha256(path.read_bytes()).hexdigest() for path in files} == table
    report = data.validate(mini, decode=False)
    assert len(report) == 100 and set(report["checksum"]) == {"ok"} and report["ok"].all()


def test_shipped_full_index_is_the_published_md5_table(shared):
    published = shared / "gtzan_index" / "gtzan_genre_md5.csv"
    index = data.gtzan_index()
    assert (Path(data.__file__).parent / "resources" / "gtzan_genre_md5.csv").read_bytes() == published.read_bytes()
    assert len(index) == 1000 and index["md5"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert set(index["track_id"]) >= set(data._sha256_table("gtzan_mini_SHA256SUMS"))
