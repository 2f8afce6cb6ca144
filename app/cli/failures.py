"""What the CLI says when a command fails in a way no library turned into a
typed error: one sentence on stderr, never a traceback (that goes to the log).

A full disk is the common case worth naming. It arrives in several dresses:
``OSError(ENOSPC)`` from Python, sqlite3's "database or disk is full", and
chromadb's errors, which wrap the Rust or SQLite message in their own class
("... (os error 28)", "(code: 13) database or disk is full"). A file-size
limit (EFBIG, RLIMIT_FSIZE, a FAT32 4 GiB file) stops writes the same way
and needs the same remedy, so it is named with it.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

EXIT_ERROR = 1

_NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"
# Lower-case fragments of the messages the wrapped errors carry.
_NO_ROOM_TEXTS = (
    "no space left on device",
    "database or disk is full",
    "disk quota exceeded",
    "file too large",
    "os error 28",  # Rust's io::Error for ENOSPC
    "os error 27",  # ... and EFBIG
    "os error 122",  # ... and EDQUOT (Linux)
)
_MAX_CHAIN = 20  # causes followed before giving up (a cycle guard)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or anything it was raised from) means "no room to write"."""
    for error in _chain(exc):
        if isinstance(error, OSError) and error.errno in _NO_ROOM_ERRNOS:
            return True
        if isinstance(error, sqlite3.Error) and getattr(error, "sqlite_errorcode", None) == (
            _SQLITE_FULL
        ):
            return True
        text = str(error).lower()
        if any(fragment in text for fragment in _NO_ROOM_TEXTS):
            return True
    return False


def _is_io_error(error: BaseException) -> bool:
    """SQLite's I/O error by its code; by its words only where another
    library (chromadb) wrapped it and the code is gone."""
    if isinstance(error, sqlite3.Error) and hasattr(error, "sqlite_errorcode"):
        return (error.sqlite_errorcode & 0xFF) == sqlite3.SQLITE_IOERR
    return "disk i/o error" in str(error).lower()


def failure_sentence(exc: BaseException, *, data_dir: Path, log_file: Path) -> str:
    """The one line the user reads for an unexpected failure."""
    if is_disk_full(exc):
        return (
            f"the disk is full: Footnote could not write to {data_dir}. Free some space and "
            "run the same command again (what was saved before is kept)."
        )
    if any(_is_io_error(error) for error in _chain(exc)):
        return (
            f"a disk error stopped the command: Footnote could not write to {data_dir}. "
            "Check the free space and the disk, then run the same command again."
        )
    summary = " ".join(str(exc).split())[:200] or type(exc).__name__
    return f"an unexpected problem stopped the command ({summary}). The details are in {log_file}."


def run_reporting_failures(
    command: str,
    body: Callable[[], int],
    typed: tuple[type[Exception], ...],
    *,
    data_dir: Path,
    log_file: Path,
) -> int:
    """Run a CLI command; a ``typed`` error (the libraries' own, which carry a
    sentence and a ``detail``) prints its sentence, anything else the
    sentence of :func:`failure_sentence`; the details go to the log, never a
    traceback to the terminal. Returns the exit code."""
    # A log file that cannot be written (a full disk) must not print logging's
    # own traceback on the terminal: the log is for details, stderr for sentences.
    logging.raiseExceptions = False
    try:
        return body()
    except typed as exc:
        log.info("%s failed: %s\n%s", command, exc, getattr(exc, "detail", ""))
        print(f"footnote: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # the last line of defence: no traceback for users
        log.exception("%s failed", command)
        sentence = failure_sentence(exc, data_dir=data_dir, log_file=log_file)
        print(f"footnote: error: {sentence}", file=sys.stderr)
        return EXIT_ERROR
