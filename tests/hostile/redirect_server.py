"""A real HTTP server on 127.0.0.1 that redirects where a test says: the
hostile tests use it to send a fetcher, or a search provider, somewhere else."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class RedirectServer:
    base: str  # http://127.0.0.1:PORT
    # path -> Location header the server answers 302 with
    redirects: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # path + query of each request

    def url(self, path: str) -> str:
        return self.base + path


SEARXNG_ANSWER = {
    "results": [
        {"title": "A result", "url": "https://example.org/a", "content": "the snippet"},
    ]
}


@contextmanager
def redirect_server() -> Iterator[RedirectServer]:
    server_state = RedirectServer(base="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server_state.requests.append(self.path)
            path = urlsplit(self.path).path
            if path in server_state.redirects:
                self.send_response(302)
                self.send_header("Location", server_state.redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path.endswith("/search") and parse_qs(urlsplit(self.path).query).get("q"):
                body = json.dumps(SEARXNG_ANSWER).encode()
                content_type = "application/json"
            else:
                body = b"<!doctype html><html><body><p>A page on this computer.</p></body></html>"
                content_type = "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="redirect-server", daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
