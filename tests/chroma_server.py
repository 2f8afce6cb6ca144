"""A real Chroma server for tests: ``chroma run`` (shipped with the chromadb
package) on 127.0.0.1 and a free port, storing in a temp folder, stopped
after. Also a tiny HTTP server that answers every request with one status,
for the refusals a local ``chroma run`` never gives (401, a proxy's 502)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

START_TIMEOUT_S = 60.0  # a cold start on a busy 2-core VM takes a few seconds
STOP_TIMEOUT_S = 10.0


@dataclass
class RunningChroma:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    folder: Path
    log: Path

    def stop(self) -> None:
        """Stop it (as a crash would look to a client: the port closes)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_command() -> str:
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if found is None:
        raise RuntimeError("the chroma command (from the chromadb package) is not installed")
    return found


@contextmanager
def running_chroma(folder: Path) -> Iterator[RunningChroma]:
    """``chroma run --path folder/db --host 127.0.0.1 --port <free>``, ready to answer."""
    import httpx

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "chroma.log"
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                chroma_command(),
                "run",
                "--path",
                str(folder / "db"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = RunningChroma(f"http://127.0.0.1:{port}", port, process, folder / "db", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"chroma run exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{server.url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"chroma run did not start: {log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


class _StatusHandler(BaseHTTPRequestHandler):
    status = 500
    body = b""

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@contextmanager
def answering(status: int, body: bytes = b"") -> Iterator[str]:
    """A server on 127.0.0.1 that answers every request with ``status`` and
    ``body``; yields its URL."""
    handler = type("Handler", (_StatusHandler,), {"status": status, "body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="status-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _TokenProxy(BaseHTTPRequestHandler):
    """Forwards to a real Chroma server only the requests that carry the token
    (as a reverse proxy with token auth in front of ``chroma run`` does); the
    others get 401. ``seen`` records each request's Authorization header."""

    upstream = ""
    token = ""
    seen: ClassVar[list[str | None]] = []  # each proxy's own list (token_proxy)

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        import httpx

        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        offered = self.headers.get("Authorization")
        self.seen.append(offered)
        if offered != f"Bearer {self.token}":
            status, content = 401, b'{"error":"Unauthorized","message":"token"}'
        else:
            answer = httpx.request(
                self.command,
                self.upstream + self.path,
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=30.0,
            )
            status, content = answer.status_code, answer.content
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_DELETE = _forward


@contextmanager
def token_proxy(upstream: str, token: str) -> Iterator[tuple[str, list[str | None]]]:
    """A server on 127.0.0.1 in front of ``upstream`` that wants ``token``;
    yields its URL and the Authorization headers it was sent."""
    seen: ClassVar[list[str | None]] = []  # each proxy's own list (token_proxy)
    handler = type("Handler", (_TokenProxy,), {"upstream": upstream, "token": token, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="token-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
