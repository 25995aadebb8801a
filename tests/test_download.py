"""genrelib.data.download against a local HTTP server on 127.0.0.1 (never the internet)."""

import hashlib
import http.server
import io
import json
import shutil
import tarfile
import threading
import warnings
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from genrelib import data
from genrelib.cli import main
from genrelib.errors import ChecksumError, DataError, DownloadError


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` (path -> bytes) with HTTP range support; can cut the first response short."""

    files: dict[str, bytes] = {}
    cut_first_response_at: int | None = None
    requests_seen: list[tuple[str, str | None]] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = self.files.get(self.path)
        self.requests_seen.append((self.path, self.headers.get("Range")))
        if body is None:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if type(self).cut_first_response_at is not None:
            self.wfile.write(payload[: type(self).cut_first_response_at])
            type(self).cut_first_response_at = None
            self.wfile.flush()
            self.connection.shutdown(2)  # the client sees a broken transfer
            return
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.requests_seen, _Handler.cut_first_response_at = {}, [], None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    httpd.shutdown()


def make_tarball(tiny_gtzan: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(tiny_gtzan / "genres", arcname="genres")
    return buffer.getvalue()


def use_remote(monkeypatch, kind, md5):
    remote = data.REMOTES[kind]
    monkeypatch.setitem(data.REMOTES, kind, data.Remote(remote.filename, remote.urls, md5, remote.description))


def test_full_download_verifies_then_unpacks(server, tiny_gtzan, tmp_path, monkeypatch):
    url, handler = server
    archive = make_tarball(tiny_gtzan)
    handler.files["/genres.tar.gz"] = archive
    use_remote(monkeypatch, "full", hashlib.md5(archive).hexdigest())
    dest = data.download("full", tmp_path / "gtzan", urls=(f"{url}/genres.tar.gz",), progress=False)
    assert len(data.load_gtzan(dest)) == 30
    # present and complete: a second call does not touch the network
    n_requests = len(handler.requests_seen)
    data.download("full", dest, urls=(f"{url}/genres.tar.gz",), progress=False)
    assert len(handler.requests_seen) == n_requests


def test_corrupt_archive_extracts_nothing(server, tiny_gtzan, tmp_path, monkeypatch):
    url, handler = server
    handler.files["/genres.tar.gz"] = make_tarball(tiny_gtzan)
    use_remote(monkeypatch, "full", "0" * 32)
    with pytest.raises(ChecksumError, match=r"genres.tar.gz: .*its md5 is not the expected 0{32}.*nothing was unpacked"):
        data.download("full", tmp_path / "gtzan", urls=(f"{url}/genres.tar.gz",), progress=False)
    assert not (tmp_path / "gtzan" / "genres").exists()
    assert not list((tmp_path / "gtzan").glob("*.tar.gz*"))


def test_interrupted_download_resumes_with_a_range_request(server, tiny_gtzan, tmp_path, monkeypatch):
    url, handler = server
    archive = make_tarball(tiny_gtzan)
    handler.files["/genres.tar.gz"] = archive
    handler.cut_first_response_at = len(archive) // 3
    use_remote(monkeypatch, "full", hashlib.md5(archive).hexdigest())
    with pytest.raises(DownloadError, match="a re-run resumes"):
        data.download("full", tmp_path / "gtzan", urls=(f"{url}/genres.tar.gz",), progress=False)
    part = tmp_path / "gtzan" / "genres.tar.gz.part"
    kept = part.stat().st_size
    assert 0 < kept <= len(archive) // 3
    dest = data.download("full", tmp_path / "gtzan", urls=(f"{url}/genres.tar.gz",), progress=False)
    assert handler.requests_seen[-1] == ("/genres.tar.gz", f"bytes={kept}-")
    assert len(data.load_gtzan(dest)) == 30


def test_mirrors_are_tried_in_order(server, tiny_gtzan, tmp_path, monkeypatch):
    url, handler = server
    archive = make_tarball(tiny_gtzan)
    handler.files["/mirror2/genres.tar.gz"] = archive
    use_remote(monkeypatch, "full", hashlib.md5(archive).hexdigest())
    dest = data.download("full", tmp_path / "g", urls=(f"{url}/down/genres.tar.gz", f"{url}/mirror2/genres.tar.gz"),
                         progress=False)
    assert [p for p, _ in handler.requests_seen] == ["/down/genres.tar.gz", "/mirror2/genres.tar.gz"]
    assert (dest / "genres").is_dir()
    with pytest.raises(DownloadError, match=r"(?s)every mirror failed.*nothing.tar.gz: HTTP 404"):
        data.download("full", tmp_path / "h", urls=(f"{url}/nothing.tar.gz",), progress=False)


def make_mini_zip(tiny_gtzan: Path, *, corrupt: str | None = None) -> tuple[bytes, dict[str, str]]:
    buffer, sums = io.BytesIO(), {}
    with zipfile.ZipFile(buffer, "w") as zf:
        for wav in sorted((tiny_gtzan / "genres").glob("*/*.wav")):
            payload = wav.read_bytes()
            sums[wav.stem] = hashlib.sha256(payload).hexdigest()
            if wav.stem == corrupt:
                payload = payload[:-10] + b"\0" * 10
            zf.writestr(f"gtzan_mini-abc/genres/{wav.parent.name}/{wav.name}", payload)
        zf.writestr("gtzan_mini-abc/genres/README.md", "readme")
    return buffer.getvalue(), sums


def test_mini_download_checks_every_member(server, tiny_gtzan, tmp_path, monkeypatch):
    url, handler = server
    handler.files["/mini.zip"], sums = make_mini_zip(tiny_gtzan)
    monkeypatch.setattr(data, "_sha256_table", lambda name: sums)
    dest = data.download("mini", tmp_path / "mini", urls=(f"{url}/mini.zip",), progress=False)
    assert len(data.load_gtzan(dest)) == 30


def test_mini_member_mismatch_unpacks_nothing(server, tiny_gtzan, tmp_path, monkeypatch):
    url, handler = server
    handler.files["/mini.zip"], sums = make_mini_zip(tiny_gtzan, corrupt="metal.00001")
    monkeypatch.setattr(data, "_sha256_table", lambda name: sums)
    with pytest.raises(ChecksumError, match=r"metal.00001.wav fails its SHA-256 check; nothing unpacked"):
        data.download("mini", tmp_path / "mini", urls=(f"{url}/mini.zip",), progress=False)
    assert not (tmp_path / "mini" / "genres").exists()


def test_not_a_zip(server, tmp_path, monkeypatch):
    url, handler = server
    handler.files["/mini.zip"] = b"<html>rate limited</html>"
    with pytest.raises(ChecksumError, match=r"gtzan_mini-a61439e8\.zip: not a valid zip archive "
                                            r"\(File is not a zip file\); nothing unpacked"):
        data.download("mini", tmp_path / "mini", urls=(f"{url}/mini.zip",), progress=False)
    assert not (tmp_path / "mini" / "genres").exists()


def test_shipped_remotes_name_the_published_checksums():
    assert data.REMOTES["full"].md5 == "5b3d6dddb579ab49814ab86dba69e7c7"
    assert any("huggingface.co/datasets/marsyas/gtzan" in u for u in data.REMOTES["full"].urls)
    assert "a61439e8" in data.REMOTES["mini"].urls[0]
    assert len(data._sha256_table("gtzan_mini_SHA256SUMS")) == 100


# ------------------------------------------------------------------------- the full archive, unpacked safely

def serve_archive(server, tiny_gtzan, monkeypatch) -> str:
    url, handler = server
    archive = make_tarball(tiny_gtzan)
    handler.files["/genres.tar.gz"] = archive
    use_remote(monkeypatch, "full", hashlib.md5(archive).hexdigest())
    return f"{url}/genres.tar.gz"


def stop_extracting_after(monkeypatch, n_files: int, error: BaseException) -> None:
    """Make ``tarfile`` fail part-way through an unpack, as a kill or a full disk would."""
    extract, calls = tarfile.TarFile.extract, []

    def failing(self, member, *args, **kwargs):
        calls.append(member)
        if len(calls) > n_files:
            raise error
        return extract(self, member, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", failing)


def test_interrupted_unpack_leaves_nothing_and_the_next_call_unpacks_again(server, tiny_gtzan, tmp_path,
                                                                          monkeypatch):
    url = serve_archive(server, tiny_gtzan, monkeypatch)
    dest = tmp_path / "gtzan"
    with monkeypatch.context() as patch:
        stop_extracting_after(patch, 12, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            data.download("full", dest, urls=(url,), progress=False)
    assert not (dest / "genres").exists() and not (dest / data.VERIFIED_RECORD).exists()
    assert (dest / "genres.tar.gz").exists() and not [p for p in dest.iterdir() if p.name.startswith(".unpacking")]
    _, handler = server
    n_requests = len(handler.requests_seen)
    data.download("full", dest, urls=(url,), progress=False)
    assert len(handler.requests_seen) == n_requests  # unpacked again from the kept archive
    assert len(data.load_gtzan(dest)) == 30


def test_disk_full_while_unpacking_is_one_clear_error(server, tiny_gtzan, tmp_path, monkeypatch):
    url = serve_archive(server, tiny_gtzan, monkeypatch)
    stop_extracting_after(monkeypatch, 5, OSError(28, "No space left on device"))
    with pytest.raises(DataError, match=r"genres.tar.gz: unpacking into .* failed .*No space left.*disk full\?.*"
                                        r"a re-run unpacks again"):
        data.download("full", tmp_path / "gtzan", urls=(url,), progress=False)
    assert not (tmp_path / "gtzan" / "genres").exists()


def test_a_genres_folder_without_the_download_record_is_not_taken_as_complete(server, tiny_gtzan, tmp_path,
                                                                              monkeypatch):
    """What an in-place unpack used to leave behind when it was interrupted: a partial genres/ folder."""
    url = serve_archive(server, tiny_gtzan, monkeypatch)
    dest = tmp_path / "gtzan"
    shutil.copytree(tiny_gtzan / "genres" / "blues", dest / "genres" / "blues")
    data.download("full", dest, urls=(url,), progress=False)
    assert len(data.load_gtzan(dest)) == 30


def test_url_from_the_environment_and_another_archive_by_its_md5(server, tiny_gtzan, tmp_path, monkeypatch):
    url, handler = server
    archive = make_tarball(tiny_gtzan)
    handler.files["/institute/gtzan.tgz"] = archive
    monkeypatch.setenv("GENRELIB_GTZAN_URL", f"{url}/institute/gtzan.tgz")
    with pytest.raises(ChecksumError, match=r"expected 5b3d6ddd.*nothing was unpacked \(a mirror with another "
                                            r"archive: pass its --md5\)"):
        data.download("full", tmp_path / "a", progress=False)
    dest = data.download("full", tmp_path / "b", md5=hashlib.md5(archive).hexdigest(), progress=False)
    assert len(data.load_gtzan(dest)) == 30
    assert [path for path, _ in handler.requests_seen] == ["/institute/gtzan.tgz"] * 2


def au_tarball(tiny_gtzan: Path, folder: Path) -> bytes:
    """The original archive's shape: Sun AU files under genres/."""
    for wav in sorted((tiny_gtzan / "genres").glob("*/*.wav")):
        y, sr = sf.read(wav)
        target = folder / "genres" / wav.parent.name / f"{wav.stem}.au"
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(target, y, sr, format="AU", subtype="PCM_16")
    return make_tarball(folder)


def test_au_tree_is_verified_by_the_archive_md5(server, tmp_path, tiny_gtzan, monkeypatch, capsys):
    url, handler = server
    archive = au_tarball(tiny_gtzan, tmp_path / "au")
    handler.files["/genres.tar.gz"] = archive
    dest = tmp_path / "gtzan"
    assert main(["data", "download", "full", "--dest", str(dest), "--url", f"{url}/genres.tar.gz",
                 "--md5", hashlib.md5(archive).hexdigest(), "--quiet"]) == 0
    record = json.loads((dest / data.VERIFIED_RECORD).read_text())
    assert record["archive_md5"] == hashlib.md5(archive).hexdigest() and len(record["files"]) == 30
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # files were verified: no "nothing verified" warning
        report = data.validate(dest, expected="found", duration_range=(1.9, 2.1)).set_index("track_id")
    assert set(report["checksum"]) == {"archive"} and report["ok"].all()
    victim = dest / "genres" / "rock" / "rock.00001.au"
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    report = data.validate(dest, expected="found", duration_range=(1.9, 2.1)).set_index("track_id")
    assert report.loc["rock.00001", "checksum"] == "mismatch"
    assert report.loc["rock.00001", "problem"] == "checksum mismatch (file differs from what the verified archive " \
                                                  "unpacked)"
    assert main(["data", "validate", "--data", str(dest), "--expected", "found"]) == 1
    assert "checksums: {'archive': 29, 'mismatch': 1}" in capsys.readouterr().out
    # the same files without the record: nothing can be verified, and validate says so once
    (dest / data.VERIFIED_RECORD).unlink()
    with pytest.warns(data.GenrelibWarning, match="no file could be checksum-verified") as caught:
        report = data.validate(dest, expected="found", duration_range=(1.9, 2.1))
    assert set(report["checksum"]) == {"unknown"} and len(caught) == 1


def test_md5_and_url_are_for_the_full_archive_only(capsys):
    assert main(["data", "download", "mini", "--md5", "0" * 32]) == 2
    assert "--url and --md5 apply to `download full` only" in capsys.readouterr().err
