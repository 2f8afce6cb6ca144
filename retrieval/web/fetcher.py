"""Fetch the top result pages concurrently, each within its own time box and
all within an overall one.

Workers block in socket reads, which neither a ``threading.Event`` nor a
deadline can interrupt by themselves; the coordinating thread therefore keeps
each worker's live connection and shuts its socket down on cancel or when the
page's or the overall deadline passes, so :meth:`Fetcher.fetch_all` returns on
time even against a server that sends one byte a minute. Every URL (and
every redirect hop) is written to the privacy ledger before it is requested.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from retrieval.errors import RetrievalError
from retrieval.web.address_guard import IPNetwork, Resolver, system_resolver
from retrieval.web.events import Fetching
from retrieval.web.http_fetch import MAX_PAGE_BYTES, FetchedPage, fetch_page
from retrieval.web.ledger import Ledger

FETCH_WORKERS = 5
PAGE_TIMEOUT_S = 6.0
FETCH_TOTAL_TIMEOUT_S = 12.0
_POLL_S = 0.05  # how often the coordinator looks at cancel and deadlines


@dataclass(frozen=True)
class FetchFailure:
    url: str
    reason: str  # a sentence for people ("… answered HTTP 404 Not Found.")


FetchOutcome = FetchedPage | FetchFailure


@dataclass(frozen=True)
class FetchLimits:
    workers: int = FETCH_WORKERS
    page_timeout_s: float = PAGE_TIMEOUT_S
    total_timeout_s: float = FETCH_TOTAL_TIMEOUT_S
    max_page_bytes: int = MAX_PAGE_BYTES


class _Slot:
    """One worker's current connection and its page deadline, guarded by a lock
    because the coordinator cuts it from another thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connection: http.client.HTTPConnection | None = None
        self.deadline = float("inf")
        self.stopped = False  # a final cut: any later connection is cut on arrival

    def set(self, connection: http.client.HTTPConnection | None) -> None:
        with self.lock:
            self.connection = connection
            if self.stopped:
                self._shutdown()

    def cut(self, *, final: bool = False) -> None:
        with self.lock:
            self.stopped = self.stopped or final
            self._shutdown()

    def _shutdown(self) -> None:
        sock = self.connection.sock if self.connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv() at once


class Fetcher:
    def __init__(
        self,
        ledger: Ledger,
        *,
        limits: FetchLimits | None = None,
        allow_local: bool = False,
        local_networks: Sequence[IPNetwork] | None = None,
        resolve: Resolver = system_resolver,
    ) -> None:
        self._ledger = ledger
        self._limits = limits or FetchLimits()
        self._allow_local = allow_local
        self._local_networks = local_networks
        self._resolve = resolve

    def fetch_all(
        self, urls: Sequence[str], cancel: threading.Event
    ) -> Generator[Fetching, None, dict[str, FetchOutcome]]:
        """Yields ``Fetching(done, total)`` as pages arrive; returns an outcome
        for every URL (pages not reached in time fail with that reason)."""
        urls = list(dict.fromkeys(urls))
        outcomes: dict[str, FetchOutcome] = {}
        if not urls:
            return outcomes
        limits = self._limits
        overall_deadline = time.monotonic() + limits.total_timeout_s
        slots: dict[str, _Slot] = {url: _Slot() for url in urls}
        # The workers' own stop flag: set on the caller's cancel, and also when
        # the caller abandons this generator, so no worker starts another hop.
        stop = threading.Event()
        yield Fetching(0, len(urls))
        pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="web-fetch")
        try:
            futures: dict[Future[FetchOutcome], str] = {
                pool.submit(self._fetch_one, url, slots[url], overall_deadline, stop): url
                for url in urls
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                for future in done:
                    outcomes[futures[future]] = future.result()
                if done:
                    yield Fetching(len(outcomes), len(urls))
                if cancel.is_set():
                    stop.set()
                now = time.monotonic()
                for future in pending:
                    slot = slots[futures[future]]
                    if stop.is_set() or now >= min(slot.deadline, overall_deadline):
                        slot.cut()
        finally:
            if len(outcomes) < len(urls):  # cancelled, or the generator was closed early
                stop.set()
                for slot in slots.values():
                    slot.cut(final=True)
            pool.shutdown(wait=True, cancel_futures=True)
        return outcomes

    def _fetch_one(
        self, url: str, slot: _Slot, overall_deadline: float, cancel: threading.Event
    ) -> FetchOutcome:
        now = time.monotonic()
        slot.deadline = min(now + self._limits.page_timeout_s, overall_deadline)
        if cancel.is_set() or now >= overall_deadline:
            reason = "Stopped." if cancel.is_set() else "Not fetched: out of time."
            return FetchFailure(url, reason)
        try:
            return fetch_page(
                url,
                record=lambda hop: self._ledger.record("fetch", "fetch", hop),
                deadline=slot.deadline,
                cancel=cancel,
                allow_local=self._allow_local,
                local_networks=self._local_networks,
                resolve=self._resolve,
                max_bytes=self._limits.max_page_bytes,
                on_connection=slot.set,
            )
        except RetrievalError as exc:
            return FetchFailure(url, exc.message)
        except Exception as exc:  # noqa: BLE001 - one odd page must not end the search
            return FetchFailure(url, f"Could not read {url} ({type(exc).__name__}).")
