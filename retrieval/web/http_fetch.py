"""One guarded page request: manual redirects, each hop checked by the
address guard, a connection pinned to the checked address, time- and
size-capped reading, and no cookies.

Why the standard library and not httpx (which chromadb installs): the
guard must decide which IP address the socket connects to, while the Host
header, TLS SNI and certificate check still use the host name. With
``http.client`` that is one overridden ``connect()`` (below); httpx would need
a custom httpcore network backend for the same, and its connection pooling,
cookie jar and automatic redirects are all things this fetcher must not do.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

from retrieval.errors import FetchRefused
from retrieval.web.address_guard import IPNetwork, Resolver, Target, check_url, system_resolver
from retrieval.web.errors import PageUnavailable

MAX_PAGE_BYTES = 3 * 1024 * 1024  # read this much of a page, then stop
MAX_REDIRECTS = 5
READ_CHUNK_BYTES = 64 * 1024
# A plain, honest user agent: no browser impersonation, no tracking identifiers.
USER_AGENT = "Mozilla/5.0 (compatible; Footnote/0.1; local desktop assistant)"
ACCEPTED_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain", "application/pdf"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchedPage:
    url: str  # as asked for
    final_url: str  # after redirects: what the citation links to
    content_type: str  # "text/html", "application/pdf", ...
    charset: str | None  # from the Content-Type header, if any
    body: bytes
    truncated: bool  # MAX_PAGE_BYTES reached; the rest was not read


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the host."""

    def __init__(self, target: Target, timeout_s: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout_s)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the checked address; SNI and the certificate check use the host name."""

    def __init__(self, target: Target, timeout_s: float) -> None:
        self._ssl_context = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout_s, context=self._ssl_context)
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)


def fetch_page(
    url: str,
    *,
    record: Callable[[str], None],
    deadline: float,
    cancel: threading.Event,
    allow_local: bool = False,
    local_networks: Sequence[IPNetwork] | None = None,
    resolve: Resolver = system_resolver,
    max_bytes: int = MAX_PAGE_BYTES,
    on_connection: Callable[[http.client.HTTPConnection | None], None] = lambda _c: None,
) -> FetchedPage:
    """Fetch ``url`` by ``deadline`` (``time.monotonic()``). ``record(url)`` is
    called before each request leaves the machine (the privacy ledger);
    ``on_connection`` is told the live connection so another thread can cut it
    on cancel or at the deadline. Raises :class:`FetchRefused` or
    :class:`PageUnavailable`."""
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        target = check_url(
            current, allow_local=allow_local, local_networks=local_networks, resolve=resolve
        )
        _check_time(current, deadline, cancel)
        record(current)
        try:
            conn = _connection(target, deadline)
        except http.client.InvalidURL as exc:
            raise FetchRefused(f"Not opening {current}: it is not a valid address.") from exc
        try:
            try:
                # Connect first, then hand over the connection: its socket exists
                # now, so a cut from the coordinating thread cannot miss it.
                conn.connect()
                on_connection(conn)
                conn.request("GET", target.path, headers=_request_headers())
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                _check_time(current, deadline, cancel)  # a cut connection: say why
                raise PageUnavailable(
                    f"Could not read {current}: the connection failed.", detail=repr(exc)
                ) from exc
            if response.status in _REDIRECT_STATUSES and response.getheader("Location"):
                current = urljoin(current, response.getheader("Location", ""))
                continue
            if response.status != 200:
                raise PageUnavailable(
                    f"{current} answered HTTP {response.status} {response.reason}.",
                    detail=f"HTTP {response.status}",
                )
            return _read_page(
                url=url,
                final_url=current,
                response=response,
                conn=conn,
                deadline=deadline,
                cancel=cancel,
                max_bytes=max_bytes,
            )
        finally:
            on_connection(None)
            conn.close()
    raise PageUnavailable(f"{url} redirects more than {MAX_REDIRECTS} times.")


def _request_headers() -> dict[str, str]:
    return {
        "User-Agent": USER_AGENT,
        "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,application/pdf;q=0.8",
        "Accept-Encoding": "gzip, deflate",
        "Accept-Language": "en;q=0.9, *;q=0.5",
        "Connection": "close",
    }


def _connection(target: Target, deadline: float) -> http.client.HTTPConnection:
    timeout_s = max(0.05, deadline - time.monotonic())
    if target.scheme == "https":
        return _PinnedHTTPSConnection(target, timeout_s)
    return _PinnedHTTPConnection(target, timeout_s)


def _check_time(url: str, deadline: float, cancel: threading.Event) -> None:
    if cancel.is_set():
        raise PageUnavailable(f"Stopped reading {url}.", detail="cancelled")
    if time.monotonic() >= deadline:
        raise PageUnavailable(f"{url} took too long to answer.", detail="deadline passed")


def _content_type(response: http.client.HTTPResponse, first_bytes: bytes) -> str:
    if response.getheader("Content-Type"):
        return response.headers.get_content_type()
    # No header: look at the bytes, as browsers do, for the types we read.
    head = first_bytes[:512].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return "application/pdf"
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return "text/html"
    return "application/octet-stream"


def _decoder(response: http.client.HTTPResponse, url: str) -> zlib._Decompress | None:
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding in ("identity", ""):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(32 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise PageUnavailable(f"{url} is compressed in a way Footnote cannot read.", detail=encoding)


def _read_page(
    *,
    url: str,
    final_url: str,
    response: http.client.HTTPResponse,
    conn: http.client.HTTPConnection,
    deadline: float,
    cancel: threading.Event,
    max_bytes: int,
) -> FetchedPage:
    declared = response.getheader("Content-Type")
    if declared and response.headers.get_content_type() not in ACCEPTED_TYPES:
        raise PageUnavailable(
            f"{final_url} is not a web page or PDF ({response.headers.get_content_type()}).",
            detail=declared,
        )
    decoder = _decoder(response, final_url)
    body = bytearray()
    truncated = False
    while len(body) <= max_bytes:
        _check_time(final_url, deadline, cancel)
        if conn.sock is not None:
            conn.sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = response.read1(READ_CHUNK_BYTES)
        except (OSError, http.client.HTTPException) as exc:
            _check_time(final_url, deadline, cancel)
            raise PageUnavailable(
                f"Could not read {final_url}: the connection failed.", detail=repr(exc)
            ) from exc
        if not chunk:
            # End of data, or the coordinator cut the socket at the deadline or
            # on cancel (a cut read looks like a clean end): say which.
            _check_time(final_url, deadline, cancel)
            break
        if decoder is not None:
            try:
                # Never inflate past the cap (a compressed "zip bomb" stays small).
                chunk = decoder.decompress(chunk, max_bytes + 1 - len(body))
            except zlib.error as exc:
                raise PageUnavailable(f"{final_url} sent damaged data.", detail=repr(exc)) from exc
        body += chunk
    if len(body) > max_bytes:
        del body[max_bytes:]
        truncated = True
    content_type = _content_type(response, bytes(body))
    if content_type not in ACCEPTED_TYPES:
        raise PageUnavailable(f"{final_url} is not a web page or PDF ({content_type}).")
    if content_type == "application/pdf" and truncated:
        raise FetchRefused(
            f"{final_url} is a PDF larger than {max_bytes // (1024 * 1024)} MB; not read.",
            detail=f"more than {max_bytes} bytes",
        )
    return FetchedPage(
        url=url,
        final_url=final_url,
        content_type=content_type,
        charset=response.headers.get_content_charset(),
        body=bytes(body),
        truncated=truncated,
    )
