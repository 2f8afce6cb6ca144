"""Downloads against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import download as dl
from engine.download import (
    ChecksumMismatch,
    DownloadCancelled,
    DownloadDone,
    DownloadError,
    DownloadProgress,
    NotEnoughDisk,
    download,
    part_path_for,
)
from tests.http_server import ServerBehaviour, serve_file

PAYLOAD = bytes(range(256)) * (5 * 4096 + 17)  # ~5.2 MB, not a multiple of the chunk size
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server() -> Iterator[tuple[str, ServerBehaviour]]:
    with serve_file(PAYLOAD) as served:
        yield served


def run(url: str, dest: Path, cancel: threading.Event | None = None, **kw: object) -> list:
    return list(download(url, dest, cancel or threading.Event(), **kw))  # type: ignore[arg-type]


def test_full_download_is_verified_and_published_atomically(server, tmp_path: Path) -> None:
    url, _ = server
    dest = tmp_path / "models" / "model.gguf"
    events = run(url, dest, sha256=SHA)
    done = events[-1]
    assert isinstance(done, DownloadDone)
    assert dest.read_bytes() == PAYLOAD
    assert done.sha256 == SHA
    assert not part_path_for(dest).exists()
    progress = [e for e in events if isinstance(e, DownloadProgress)]
    assert progress[-1].done_bytes == len(PAYLOAD)
    assert progress[-1].fraction == 1.0


def test_resumes_after_the_connection_drops(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.drop_first_after = 2_000_000
    dest = tmp_path / "model.gguf"
    events = run(url, dest, sha256=SHA)
    assert isinstance(events[-1], DownloadDone)
    assert dest.read_bytes() == PAYLOAD
    assert behaviour.requests[0] == ""
    assert behaviour.requests[1].startswith("bytes=") and behaviour.requests[1] != "bytes=0-"


def test_resumes_a_part_file_left_by_an_earlier_run(server, tmp_path: Path) -> None:
    url, behaviour = server
    dest = tmp_path / "model.gguf"
    part_path_for(dest).write_bytes(PAYLOAD[:3_000_000])
    run(url, dest, sha256=SHA)
    assert behaviour.requests == ["bytes=3000000-"]
    assert dest.read_bytes() == PAYLOAD


def test_server_without_range_support_restarts_cleanly(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.supports_range = False
    dest = tmp_path / "model.gguf"
    part_path_for(dest).write_bytes(b"stale bytes from another file")
    run(url, dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD


def test_corrupted_byte_fails_the_checksum_and_leaves_nothing(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.corrupt_at = 1_234_567
    dest = tmp_path / "model.gguf"
    with pytest.raises(ChecksumMismatch, match="arrived damaged"):
        run(url, dest, sha256=SHA)
    assert not dest.exists()
    assert not part_path_for(dest).exists()


def test_hub_published_sha256_is_used_when_none_is_given(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.linked_etag = SHA
    behaviour.corrupt_at = 10
    with pytest.raises(ChecksumMismatch):
        run(url, tmp_path / "model.gguf")


def test_refuses_to_start_without_disk_space(server, tmp_path: Path, monkeypatch) -> None:
    url, _ = server
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda _p: usage._replace(free=len(PAYLOAD) // 2))
    dest = tmp_path / "model.gguf"
    with pytest.raises(NotEnoughDisk, match="Not enough disk space"):
        run(url, dest, sha256=SHA)
    assert not dest.exists()
    assert not part_path_for(dest).exists() or part_path_for(dest).stat().st_size == 0


def test_cancel_keeps_the_part_and_a_later_run_resumes(server, tmp_path: Path) -> None:
    url, behaviour = server
    dest = tmp_path / "model.gguf"
    cancel = threading.Event()
    events = []
    for event in download(url, dest, cancel, sha256=SHA):
        events.append(event)
        if isinstance(event, DownloadProgress) and event.done_bytes > 0:
            cancel.set()
    stopped = events[-1]
    assert isinstance(stopped, DownloadCancelled)
    assert 0 < stopped.done_bytes < len(PAYLOAD)
    assert not dest.exists()
    run(url, dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD
    assert behaviour.requests[-1] == f"bytes={stopped.done_bytes}-"


def test_missing_file_says_so(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.status = 404
    with pytest.raises(DownloadError, match="no longer at this address"):
        run(url, tmp_path / "model.gguf")


def test_the_system_proxy_is_used(tmp_path: Path, monkeypatch) -> None:
    """urllib reads the proxy from the environment (and the OS settings on macOS
    and Windows); a forward proxy on loopback sees the request for a host that
    does not even resolve."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)  # a proxy receives the absolute URL
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=proxy.serve_forever, name="test-proxy")
    thread.start()
    try:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_port}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        dest = tmp_path / "model.gguf"
        run("http://models.example.invalid/model.gguf", dest, sha256=SHA)
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(5)
    assert seen == ["http://models.example.invalid/model.gguf"]
    assert dest.read_bytes() == PAYLOAD
