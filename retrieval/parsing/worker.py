"""Parsing untrusted files in worker processes, with a timeout and a memory cap.

A PDF can hang pdfium, a DOCX can expand to gigabytes of XML, a parser can
segfault. None of that may take Footnote down or stall indexing, so
``parse_file`` runs the parser in a separate process and streams its sections
back over a pipe in batches:

- a worker that sends nothing for ``timeout_s`` is killed: the timeout is for
  *progress* (time to the next batch), not for the whole file, so a 2 GB text
  file that streams steadily is never cut off while a stuck parser is;
- the memory cap is ``RLIMIT_AS`` set in the worker (Linux and other POSIX
  systems that have it; skipped elsewhere) to the worker's own size after
  start-up plus ``memory_limit_mb``, so an allocation past it fails with
  MemoryError inside the worker instead of swapping the machine;
- a worker that crashes, is killed, or runs out of memory is replaced by a
  fresh one on the next file; the caller gets ``ParseFailed`` with a state.

Workers live in a small pool (``ParserPool``) and are reused across files:
starting one costs a fork of a pre-warmed server (forkserver start method on
Linux; spawn elsewhere) and the import of the parsers happens once per
worker, not once per file. ``parse_file`` uses one shared pool.

Sections reach the caller as they are parsed. If ``ParseFailed`` comes after
some sections, the file as a whole failed: callers should drop what they got
from it (the index keeps a failed file's old chunks out by its manifest state).
Leaving the iterator early (``break``, an exception, ``close()``) kills the
worker busy on that file, since it would otherwise keep parsing into a pipe
nobody reads.

A parse stops within ``STOP_POLL_S`` once its ``stopped()`` says so (the
worker is killed, ``ParseStopped`` raised), and refuses a file that is no
longer the one the scan found (``identity``: the worker opens it without
blocking and checks it, see ``retrieval.safe_open``). The indexer hands both
through ``parse_guard`` on its reading thread, so any chunker that parses
with ``parse_file`` on that thread gets them without passing them along.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from retrieval.discovery import display_path
from retrieval.errors import ParseFailed, ParserUnavailable
from retrieval.parsing.section import Section
from retrieval.parsing.worker_process import Job, serve
from retrieval.safe_open import STOP_POLL_S, Identity

PARSE_TIMEOUT_S = 30.0  # longest wait for the next batch of sections
PARSE_MEMORY_MB = 2048  # address space a worker may add on top of its start-up size
WORKER_START_TIMEOUT_S = 120.0  # a cold start imports pdfium, lxml, trafilatura
WORKER_STOP_TIMEOUT_S = 5.0
DEFAULT_POOL_SIZE = max(1, min(4, os.cpu_count() or 1))

# Imported in the fork server, so every worker forked from it starts warm.
_PRELOAD_MODULES = [
    "retrieval.parsing.worker_process",
    "retrieval.parsing.parsers",
    "retrieval.parsing.pdf_pages",
    "retrieval.parsing.docx_file",
    "retrieval.parsing.html_page",
    "pypdfium2",
    "docx",
    "trafilatura",
    "charset_normalizer",
]


class ParseStopped(Exception):
    """The parse was stopped on request (``stopped()``); not the file's fault."""


@dataclass(frozen=True)
class _Guard:
    path: Path
    identity: Identity | None
    stopped: Callable[[], bool]


_guards = threading.local()


@contextlib.contextmanager
def parse_guard(
    path: Path, identity: Identity | None, stopped: Callable[[], bool]
) -> Iterator[None]:
    """Parses of ``path`` started on this thread inside the block check the
    file against ``identity`` and stop once ``stopped()``."""
    previous = getattr(_guards, "guard", None)
    _guards.guard = _Guard(Path(path), identity, stopped)
    try:
        yield
    finally:
        _guards.guard = previous


def _guard_for(path: Path) -> _Guard | None:
    guard: _Guard | None = getattr(_guards, "guard", None)
    return guard if guard is not None and guard.path == path else None


class ParserPool:
    """Up to ``size`` worker processes, started on demand and reused.

    Safe to use from several threads at once: each ``parse`` holds one worker
    while its iterator runs; a caller beyond ``size`` waits for a free one.
    """

    def __init__(self, size: int = DEFAULT_POOL_SIZE, context: BaseContext | None = None) -> None:
        self.size = max(1, size)
        self._context = context or _default_context()
        self._idle: list[_Worker] = []
        self._busy = 0
        self._closed = False
        self._lock = threading.Condition()

    def parse(
        self,
        path: Path,
        *,
        timeout_s: float = PARSE_TIMEOUT_S,
        memory_limit_mb: int | None = PARSE_MEMORY_MB,
        parser: str | None = None,
        identity: Identity | None = None,
        stopped: Callable[[], bool] | None = None,
    ) -> Iterator[Section]:
        """The sections of ``path``, parsed in a worker; raises ``ParseFailed``,
        or ``ParseStopped`` once ``stopped()``.

        ``parser`` ("package.module:function", a callable taking a Path and
        returning sections) replaces the usual choice by file kind: for other
        formats, and for tests that need a parser that hangs or crashes.
        ``identity`` (what the scan found) makes the worker refuse a file
        swapped since. Both default to this thread's ``parse_guard``.
        """
        path = Path(path)
        name = display_path(path.name)
        guard = _guard_for(path)
        if guard is not None:
            identity = identity or guard.identity
            stopped = stopped or guard.stopped
        worker = self._acquire_ready((path, memory_limit_mb, parser, identity), stopped)
        finished = False
        try:
            while True:
                message = worker.receive(timeout_s, name, stopped)
                if message[0] == "sections":
                    for values in message[1]:
                        yield Section.from_tuple(values)
                elif message[0] == "done":
                    finished = True
                    return
                else:
                    _, state, text, detail, healthy = message
                    finished = healthy
                    raise ParseFailed(state, text, detail=detail)
        finally:
            if not finished:
                worker.kill()
            self._release(worker)

    def close(self) -> None:
        """Stop every idle worker; busy ones stop when their file is done."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        for worker in idle:
            worker.stop()

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _acquire_ready(self, job: Job, stopped: Callable[[], bool] | None = None) -> _Worker:
        """A worker that has accepted ``job``. An idle worker can die between
        the pool's liveness check and the send (killed, or parent-death
        races); then one fresh worker is tried before giving up. Waiting for
        a free worker, or for a new one to start, ends with ``ParseStopped``
        once ``stopped()``."""
        for attempt in range(2):
            worker = self._acquire(stopped)
            try:
                worker.send(job)
            except (OSError, ValueError) as exc:
                worker.kill()
                self._release(worker)
                if attempt:
                    raise ParserUnavailable(
                        "Footnote's document reader stopped responding; restart Footnote",
                        detail=repr(exc),
                    ) from exc
            else:
                return worker
        raise AssertionError("unreachable")

    def _acquire(self, stopped: Callable[[], bool] | None = None) -> _Worker:
        with self._lock:
            while True:
                if self._closed:
                    raise RuntimeError("the parser pool is closed")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        self._busy += 1
                        return worker
                    worker.kill()
                if self._busy + len(self._idle) < self.size:
                    self._busy += 1
                    break
                self._lock.wait(STOP_POLL_S if stopped is not None else None)
                if stopped is not None and stopped():
                    raise ParseStopped
        try:
            return _Worker.start(self._context, stopped)
        except BaseException:
            with self._lock:
                self._busy -= 1
                self._lock.notify()
            raise

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            self._busy -= 1
            keep = worker.alive and not self._closed
            if keep:
                self._idle.append(worker)
            self._lock.notify()
        if not keep:
            worker.stop()


class _Worker:
    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self._killed = False

    @classmethod
    def start(cls, context: BaseContext, stopped: Callable[[], bool] | None = None) -> _Worker:
        parent_conn, child_conn = context.Pipe(duplex=True)
        process = context.Process(  # type: ignore[attr-defined]
            target=serve, args=(child_conn,), name="footnote-parser", daemon=True
        )
        process.start()
        child_conn.close()
        worker = cls(process, parent_conn)
        try:
            ready = worker._wait(WORKER_START_TIMEOUT_S, stopped) and parent_conn.recv()
        except (EOFError, OSError):
            ready = None
        if not ready or ready[0] != "ready":
            exitcode = process.exitcode
            worker.kill()
            raise ParserUnavailable(
                "Footnote's document reader could not start, so no file can be indexed; "
                "restart Footnote, and if it happens again, report it with the log",
                detail=f"parser worker exit code {exitcode}",
            )
        return worker

    @property
    def alive(self) -> bool:
        return not self._killed and bool(self.process.is_alive())

    def send(self, job: Job) -> None:
        self.conn.send(job)

    def receive(
        self, timeout_s: float, name: str, stopped: Callable[[], bool] | None = None
    ) -> tuple[Any, ...]:
        try:
            if not self._wait(timeout_s, stopped):
                self.kill()
                raise ParseFailed(
                    "timeout",
                    f"{name}: reading it took over {timeout_s:g} s without progress; skipped",
                    detail="the parser worker was stopped",
                )
            message: tuple[Any, ...] = self.conn.recv()
            return message
        except (EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
            # The worker died, possibly mid-message: its exit code says how.
            self.process.join(WORKER_STOP_TIMEOUT_S)
            raise _crash_error(name, self.process.exitcode, exc) from exc

    def _wait(self, timeout_s: float, stopped: Callable[[], bool] | None) -> bool:
        """True once a message is waiting, False after ``timeout_s``; kills
        the worker and raises ``ParseStopped`` once ``stopped()``."""
        if stopped is None:
            return bool(self.conn.poll(timeout_s))
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if self.conn.poll(max(0.0, min(STOP_POLL_S, left))):
                return True
            if stopped():
                self.kill()
                raise ParseStopped
            if left <= STOP_POLL_S:
                return False

    def stop(self) -> None:
        """Ask an idle worker to exit; kill it if it does not."""
        if not self._killed:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)
            self.process.join(WORKER_STOP_TIMEOUT_S)
        self.kill()

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        if self.process.is_alive():
            self.process.kill()
        self.process.join(WORKER_STOP_TIMEOUT_S)
        self.conn.close()
        with contextlib.suppress(ValueError):
            self.process.close()  # frees its sentinel; ValueError if somehow still running


def _crash_error(name: str, exitcode: int | None, exc: BaseException) -> ParseFailed:
    detail = f"worker exit code {exitcode}: {exc!r}"
    if exitcode == -signal.SIGKILL:
        # Not our kill (ours happens only on timeout, reported above): on
        # Linux that is the out-of-memory killer.
        return ParseFailed(
            "too_large_memory",
            f"{name}: the parser was killed while reading it, most likely for lack of memory",
            detail=detail,
        )
    if exitcode is not None and exitcode < 0:
        try:
            how = signal.Signals(-exitcode).name
        except ValueError:
            how = f"signal {-exitcode}"
        return ParseFailed(
            "failed",
            f"{name}: the file made Footnote's reader crash, so it was skipped; it may be "
            "damaged (open and re-save it, then retry)",
            detail=f"{how}; {detail}",
        )
    return ParseFailed(
        "failed",
        f"{name}: the parser stopped unexpectedly on this file (exit code {exitcode})",
        detail=detail,
    )


def _default_context() -> BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD_MODULES)
        return context
    return multiprocessing.get_context("spawn")


# ----------------------------------------------------------------- shared pool

_shared_pool: ParserPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ParserPool:
    global _shared_pool
    with _shared_lock:
        if _shared_pool is None:
            _shared_pool = ParserPool()
            atexit.register(_shared_pool.close)
        return _shared_pool


def parse_file(
    path: Path,
    *,
    timeout_s: float = PARSE_TIMEOUT_S,
    memory_limit_mb: int | None = PARSE_MEMORY_MB,
    parser: str | None = None,
    identity: Identity | None = None,
    stopped: Callable[[], bool] | None = None,
) -> Iterator[Section]:
    """``ParserPool.parse`` on the process-wide pool (see the module docstring)."""
    return shared_pool().parse(
        path,
        timeout_s=timeout_s,
        memory_limit_mb=memory_limit_mb,
        parser=parser,
        identity=identity,
        stopped=stopped,
    )


def iter_sections(path: Path) -> Iterator[Section]:
    """The same sections in this process: for tests and benchmark comparison."""
    from retrieval.parsing.parsers import iter_sections as in_process

    return in_process(path)
