"""The worker process's side of ``retrieval.parsing.worker``.

It receives jobs (path, memory cap, parser override) over a pipe, sets the
memory cap for the job, and sends the sections back in batches: at most
``BATCH_CHARS`` of text, or whatever it has after ``BATCH_INTERVAL_S``, so
the parent sees progress (its timeout) even on a slow file. Every failure
goes back as a message; after MemoryError the worker exits instead of taking
the next job, since the interpreter's state is then suspect.

Before parsing, the worker opens the file without blocking and checks the
descriptor (a regular file; the device and inode the scan saw, when the job
carries them), and after parsing checks that the path still names that file:
a file swapped for a pipe, a device or another file is refused, not read.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from retrieval.discovery import display_path
from retrieval.errors import ParseFailed
from retrieval.parsing.section import Section
from retrieval.safe_open import Identity, NotTheScannedFile, open_scanned

BATCH_CHARS = 256 * 1024  # send a batch once it holds this much text
BATCH_INTERVAL_S = 0.2  # ... or once this long has passed since the last one

# path, memory cap in MB, parser override, what the scan found at the path
Job = tuple[Path, int | None, str | None, Identity | None]


def serve(conn: Connection) -> None:
    """The worker's main loop: parse each job sent, stream its sections back."""
    _die_with_parent()
    # Ctrl+C in a terminal reaches the whole process group; the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from retrieval.parsing import parsers  # noqa: F401  (warm start before "ready")

    baseline_bytes = _address_space_bytes()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job: Job | None = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        path, memory_limit_mb, parser, identity = job
        _limit_memory(baseline_bytes, memory_limit_mb)
        healthy = _run_job(conn, path, parser, identity)
        _limit_memory(baseline_bytes, None)
        if not healthy:
            return  # after MemoryError the interpreter's state is suspect: start afresh


def _run_job(
    conn: Connection, path: Path, parser: str | None, identity: Identity | None = None
) -> bool:
    batch: list[tuple[Any, ...]] = []
    scanned: int | None = None
    try:
        scanned = _open_checked(path, identity)
        size = 0
        last_send = time.monotonic()
        for section in _sections(path, parser):
            batch.append(section.as_tuple())
            size += len(section.text)
            if size >= BATCH_CHARS or time.monotonic() - last_send >= BATCH_INTERVAL_S:
                conn.send(("sections", batch))
                batch, size, last_send = [], 0, time.monotonic()
        if batch:
            conn.send(("sections", batch))
        if scanned is not None:
            _check_still_there(path, scanned, identity)
        conn.send(("done",))
        return True
    except ParseFailed as exc:
        batch = []
        healthy = exc.state != "too_large_memory"
        conn.send(("failed", exc.state, exc.message, exc.detail, healthy))
        return healthy
    finally:
        if scanned is not None:
            os.close(scanned)


def _open_checked(path: Path, identity: Identity | None) -> int | None:
    """A descriptor of the scanned file, held while the parsers read it by
    name; None when it cannot be opened (the parser then says why)."""
    try:
        fd, _ = open_scanned(path, identity)
    except NotTheScannedFile as exc:
        raise ParseFailed("unreadable", f"{display_path(path.name)}: {exc.reason}") from exc
    except OSError:
        return None
    return fd


def _check_still_there(path: Path, fd: int, identity: Identity | None) -> None:
    """The parsers opened ``path`` by name: it must still be the file checked."""
    held = os.fstat(fd)
    try:
        now = Path(path).stat(follow_symlinks=identity is None or identity.via_link)
    except OSError:
        now = None
    if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
        raise ParseFailed(
            "unreadable",
            f"{display_path(path.name)}: replaced by another file while it was read; "
            "it is read again when it next changes",
        )


def _sections(path: Path, parser: str | None) -> Iterable[Section]:
    from retrieval.parsing.parsers import iter_sections

    if parser is None:
        yield from iter_sections(path)
        return
    name = display_path(path.name)
    try:
        module_name, _, function = parser.partition(":")
        yield from getattr(importlib.import_module(module_name), function)(path)
    except ParseFailed:
        raise
    except MemoryError as exc:
        raise ParseFailed(
            "too_large_memory",
            f"{name}: reading it needs more memory than a document may use",
            detail="MemoryError",
        ) from exc
    except Exception as exc:
        raise ParseFailed(
            "failed",
            f"{name}: the parser failed on this file ({type(exc).__name__})",
            detail="".join(traceback.format_exception(exc)),
        ) from exc


def _address_space_bytes() -> int:
    try:
        pages = Path("/proc/self/statm").read_text().split()[0]
        return int(pages) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_memory(baseline_bytes: int, memory_limit_mb: int | None) -> None:
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_AS; the timeout still applies
        return
    if not hasattr(resource, "RLIMIT_AS") or sys.platform == "darwin":
        return  # macOS accepts RLIMIT_AS but does not enforce it; the timeout still applies
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = hard if memory_limit_mb is None else baseline_bytes + memory_limit_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when its parent dies, so a
    worker stuck in a hung parse never outlives Footnote."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
