"""HTTPS through the pinned connection: the socket goes to the checked
address while TLS (SNI and the certificate check) uses the host name.

A real TLS server on 127.0.0.1 with a certificate for ``secure.example``
made by the ``openssl`` command line (the test is skipped where it is missing).
"""

from __future__ import annotations

import http.server
import ipaddress
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.web.errors import PageUnavailable
from retrieval.web.http_fetch import fetch_page

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=secure.example",
         "-addext", "subjectAltName=DNS:secure.example"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[int, list[str]]]:
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            hosts.append(self.headers.get("Host", ""))
            body = b"<html><body><p>Served over TLS to the right name.</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class QuietServer(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a refused handshake is what some tests expect

    server = QuietServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="test-tls", daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hosts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def fetch(url: str) -> bytes:
    page = fetch_page(
        url,
        record=lambda _url: None,
        deadline=time.monotonic() + 10,
        cancel=threading.Event(),
        allow_local=True,
        local_networks=LOOPBACK,
        resolve=lambda host, port: ["127.0.0.1"] if host == "secure.example" else [],
    )
    return page.body


def test_tls_to_the_checked_address_verifies_the_host_name(
    tls_server: tuple[int, list[str]],
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, hosts = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # trust the test certificate
    assert b"right name" in fetch(f"https://secure.example:{port}/")
    assert hosts == [f"secure.example:{port}"]


def test_the_certificate_must_match_the_name_not_the_address(
    tls_server: tuple[int, list[str]],
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, hosts = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with pytest.raises(PageUnavailable, match="connection failed") as caught:
        fetch(f"https://127.0.0.1:{port}/")  # the certificate is for secure.example
    assert "certificate" in caught.value.detail.lower() or "hostname" in caught.value.detail
    assert hosts == []


def test_an_untrusted_certificate_is_refused(tls_server: tuple[int, list[str]]) -> None:
    port, hosts = tls_server
    with pytest.raises(PageUnavailable, match="connection failed") as caught:
        fetch(f"https://secure.example:{port}/")
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.detail
    assert hosts == []
