"""A real HTTP file server on 127.0.0.1 for download tests: supports Range,
and can drop the connection, ignore Range, corrupt a byte, stall or fail."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STALL_LIMIT_S = 25.0  # longest a stalled response waits for its release


@dataclass
class ServerBehaviour:
    payload: bytes = b""
    supports_range: bool = True
    drop_first_after: int | None = None  # close the first response after N bytes
    corrupt_at: int | None = None
    linked_etag: str | None = None
    status: int = 200
    requests: list[str] = field(default_factory=list)  # Range header of each request
    # Send N bytes, then hold the rest until ``release`` is set (as a stalled
    # network does: the client sits in a blocking read).
    stall_after: int | None = None
    release: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)  # set once it holds


class _Handler(BaseHTTPRequestHandler):
    behaviour: ServerBehaviour

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        b = self.behaviour
        b.requests.append(self.headers.get("Range", ""))
        if b.status != 200:
            self.send_error(b.status)
            return
        body = bytearray(b.payload)
        if b.corrupt_at is not None:
            body[b.corrupt_at] ^= 0xFF
        start = 0
        rng = self.headers.get("Range")
        if rng and b.supports_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = bytes(body[start:])
        self.send_header("Content-Length", str(len(chunk)))
        if b.linked_etag:
            self.send_header("X-Linked-ETag", f'"{b.linked_etag}"')
        self.end_headers()
        if b.drop_first_after is not None and len(b.requests) == 1:
            self.wfile.write(chunk[: b.drop_first_after])
            self.wfile.flush()
            self.connection.shutdown(2)  # the network drops mid-way
            return
        if b.stall_after is not None:
            self.wfile.write(chunk[: b.stall_after])
            self.wfile.flush()
            b.stalled.set()
            # Bounded, so a test that never releases fails instead of hanging.
            b.release.wait(STALL_LIMIT_S)
            chunk = chunk[b.stall_after :]
        self.wfile.write(chunk)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up mid-transfer (cancel) is expected here


@contextmanager
def serve_file(payload: bytes, name: str = "model.gguf") -> Iterator[tuple[str, ServerBehaviour]]:
    behaviour = ServerBehaviour(payload=payload)
    handler = type("BoundHandler", (_Handler,), {"behaviour": behaviour})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/{name}", behaviour
    finally:
        behaviour.release.set()  # a stalled response must not outlive the server
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
