"""A real llama.cpp ``llama-server`` on 127.0.0.1 for the tests, and a small
real proxy in front of it for the faults a healthy server does not make.

The server is built from the llama.cpp vendored in the installed
llama-cpp-python (``bench.llama_build``: once, ~5-8 min on 2 cores, cached
in ``~/.cache/footnote-dev/llama-server/<version>/``; later runs find it
there). Each server runs the tiny test model on a free port with one slot,
so its prompt cache is the one our turns reuse.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from bench.llama_build import ensure_llama_tool

START_TIMEOUT_S = 120.0
ALIAS = "tiny-phi3"


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    alias: str
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def llama_server_binary() -> Path:
    return ensure_llama_tool("llama-server")


@contextmanager
def running_llama_server(
    model: Path,
    log_dir: Path,
    *,
    api_key: str | None = None,
    context_tokens: int = 2048,
    alias: str = ALIAS,
) -> Iterator[RunningServer]:
    """Start llama-server on 127.0.0.1 and wait until it answers /health."""
    binary = llama_server_binary()
    port = free_port()
    log = log_dir / f"llama-server-{port}.log"
    command = [
        str(binary),
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ctx-size",
        str(context_tokens),
        "--parallel",
        "1",
        "--threads",
        "1",
        "--alias",
        alias,
        "--seed",
        "7",
    ]
    if api_key:
        command += ["--api-key", api_key]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = RunningServer(f"http://127.0.0.1:{port}", process, alias, log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_healthy(server: RunningServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"llama-server exited ({server.process.returncode}): "
                + server.log.read_text(errors="replace")[-2000:]
            )
        try:
            if httpx.get(server.url + "/health", timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"llama-server did not become healthy within {START_TIMEOUT_S:.0f} s")


# ------------------------------------------------------------------ the proxy


@dataclass
class ProxyFaults:
    """What the proxy does to completion requests (everything else passes)."""

    status: int | None = None  # answer this instead of forwarding (429, 503…)
    first_byte_delay_s: float = 0.0  # hold the request this long before forwarding
    completions: int = 0  # completion requests seen
    released: threading.Event = field(default_factory=threading.Event)  # ends a delay early
    # Paths answered 404, as a server without them (Ollama has no /tokenize).
    hidden_paths: tuple[str, ...] = ()
    # The answer request numbered so (1: the first) stalls after this many
    # bytes of its stream, as a server that hangs mid-answer.
    stall_request: int = 0
    stall_after_bytes: int = 0


class _ProxyHandler(BaseHTTPRequestHandler):
    faults: ProxyFaults
    upstream: str  # host:port

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        faults = self.faults
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path in faults.hidden_paths:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.endswith(("/completion", "/completions", "/api/generate")):
            faults.completions += 1
            if faults.status is not None:
                payload = b'{"error": {"code": %d, "message": "slow down"}}' % faults.status
                self.send_response(faults.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if faults.first_byte_delay_s:
                faults.released.wait(faults.first_byte_delay_s)
        upstream = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            upstream.request(self.command, self.path, body=body, headers=headers)
            reply = upstream.getresponse()
            self.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Connection", "close")
            self.end_headers()
            sent, stalls = 0, faults.stall_request and faults.completions == faults.stall_request
            while chunk := reply.read1(65536):
                if stalls and sent + len(chunk) > faults.stall_after_bytes:
                    self.wfile.write(chunk[: max(faults.stall_after_bytes - sent, 0)])
                    self.wfile.flush()
                    faults.released.wait(30)  # silent, connection open
                    return
                self.wfile.write(chunk)
                self.wfile.flush()
                sent += len(chunk)
        except OSError:
            pass  # the client went away (Stop): nothing to tell it
        finally:
            upstream.close()
            self.close_connection = True


@contextmanager
def fault_proxy(server: RunningServer, faults: ProxyFaults) -> Iterator[str]:
    """A real HTTP proxy on 127.0.0.1 in front of ``server``; yields its URL."""
    handler = type(
        "Handler", (_ProxyHandler,), {"faults": faults, "upstream": f"127.0.0.1:{server.port}"}
    )
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    proxy.daemon_threads = True
    thread = threading.Thread(target=proxy.serve_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}"
    finally:
        faults.released.set()
        proxy.shutdown()
        proxy.server_close()
        thread.join(10)


def build_in_advance() -> None:
    """For ``python -m tests.llama_server``: build before a test run."""
    print(llama_server_binary())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    build_in_advance()
