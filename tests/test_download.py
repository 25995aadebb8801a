"""genrelib.data.download against a local HTTP server on 127.0.0.1 (never the internet)."""

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from genrelib import data
from genrelib.errors import ChecksumError, DownloadError


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
    with pytest.raises(ChecksumError, match=r"genres.tar.gz: .*md5 [0-9a-f]{32} != expected 0{32}.*nothing was unpacked"):
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
    with pytest.raises(ChecksumError, match="not a valid zip archive; nothing unpacked|not a valid zip archive"):
        data.download("mini", tmp_path / "mini", urls=(f"{url}/mini.zip",), progress=False)
    assert not (tmp_path / "mini" / "genres").exists()


def test_shipped_remotes_name_the_published_checksums():
    assert data.REMOTES["full"].md5 == "5b3d6dddb579ab49814ab86dba69e7c7"
    assert any("huggingface.co/datasets/marsyas/gtzan" in u for u in data.REMOTES["full"].urls)
    assert "a61439e8" in data.REMOTES["mini"].urls[0]
    assert len(data._sha256_table("gtzan_mini_SHA256SUMS")) == 100
