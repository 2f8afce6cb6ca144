"""The per-file manifest: what the index knows about every file it has seen.

One row per (collection, path): size, mtime, content SHA-256, state, the
reason for a failure, and the number of chunks. It is the source of truth: a
file is searchable once its row says ``indexed``, and a row left ``indexing``
by a crash tells the next run exactly which file's chunks to purge and redo.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class FileState(StrEnum):
    INDEXED = "indexed"
    PENDING = "pending"  # found, not indexed yet
    CHANGED = "changed"  # indexed before, the file changed since
    INDEXING = "indexing"  # its chunks are being written (a crash leaves this)
    FAILED = "failed"  # the parser gave up; ``reason`` says why
    NO_TEXT = "no_text"  # e.g. a scanned PDF without a text layer
    EXCLUDED = "excluded"
    # A symbolic link to a file or folder outside the collection's folders,
    # not followed (the reason names its target); not a failure: nothing to retry.
    LINK_OUTSIDE = "link_outside"


# Nothing Footnote can read: a type it does not read (images, .odt, archives:
# the parser's "binary") or no text in it (an empty file, a scan without a
# text layer). Listed with the reason, but not failures: reading it again
# gives the same answer, so Retry does not, and a collection of photos and
# notes is not "72 failed". The file is read again when it changes.
NOTHING_TO_READ_STATES = frozenset({"binary", FileState.NO_TEXT})
# Skipped: listed with a reason, but neither work nor a failure.
SKIPPED_STATES = frozenset({FileState.EXCLUDED, FileState.LINK_OUTSIDE, *NOTHING_TO_READ_STATES})
# States whose file still needs work. Every other state is settled until the
# file changes on disk (or the user retries a failure).
WORK_STATES = frozenset({FileState.PENDING, FileState.CHANGED, FileState.INDEXING})


def is_failure(state: str) -> bool:
    """Failed, or a parser's own failure state ("encrypted", "timeout"…): a
    file Footnote should read and could not. Not the skipped ones."""
    return state not in WORK_STATES and state != FileState.INDEXED and state not in SKIPPED_STATES


def is_skipped(state: str) -> bool:
    """Excluded, a link outside, or nothing to read (a type Footnote does not
    read, or no text in it)."""
    return state in SKIPPED_STATES


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    sha256: str | None
    state: str  # a FileState, or a parser's own failure state ("encrypted", "timeout", ...)
    reason: str
    chunks: int


def records(db: sqlite3.Connection, collection_id: int) -> dict[str, FileRecord]:
    rows = db.execute(
        "SELECT path, size, mtime_ns, sha256, state, reason, chunks FROM files "
        "WHERE collection_id = ?",
        (collection_id,),
    )
    return {row[0]: FileRecord(*row) for row in rows}


def set_state(
    db: sqlite3.Connection,
    collection_id: int,
    paths: Iterable[str],
    state: str,
    reason: str = "",
) -> None:
    """Set the state of existing rows, inserting bare rows for new paths."""
    now = time.time_ns()
    db.executemany(
        "INSERT INTO files (collection_id, path, state, reason, updated_ns) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (collection_id, path) DO UPDATE SET state = excluded.state, "
        "reason = excluded.reason, updated_ns = excluded.updated_ns",
        [(collection_id, path, state, reason, now) for path in paths],
    )


def record_result(
    db: sqlite3.Connection,
    collection_id: int,
    record: FileRecord,
) -> None:
    """Write a file's final row (indexed, failed, no text…) with its stat and hash."""
    db.execute(
        "INSERT INTO files (collection_id, path, size, mtime_ns, sha256, state, reason, chunks, "
        "updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (collection_id, path) DO "
        "UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, "
        "state = excluded.state, reason = excluded.reason, chunks = excluded.chunks, "
        "updated_ns = excluded.updated_ns",
        (
            collection_id,
            record.path,
            record.size,
            record.mtime_ns,
            record.sha256,
            record.state,
            record.reason,
            record.chunks,
            time.time_ns(),
        ),
    )


def touch(db: sqlite3.Connection, collection_id: int, path: str, size: int, mtime_ns: int) -> None:
    """The file was touched (new mtime) but its content is the same."""
    db.execute(
        "UPDATE files SET size = ?, mtime_ns = ? WHERE collection_id = ? AND path = ?",
        (size, mtime_ns, collection_id, path),
    )


def forget(db: sqlite3.Connection, collection_id: int, paths: Iterable[str]) -> None:
    db.executemany(
        "DELETE FROM files WHERE collection_id = ? AND path = ?",
        [(collection_id, path) for path in paths],
    )


def paths_in_state(db: sqlite3.Connection, collection_id: int, state: str) -> list[str]:
    rows = db.execute(
        "SELECT path FROM files WHERE collection_id = ? AND state = ?", (collection_id, state)
    )
    return [row[0] for row in rows]


def state_counts(db: sqlite3.Connection, collection_id: int) -> dict[str, int]:
    rows = db.execute(
        "SELECT state, COUNT(*) FROM files WHERE collection_id = ? GROUP BY state",
        (collection_id,),
    )
    return {state: count for state, count in rows}


def reset_failures(db: sqlite3.Connection, collection_id: int) -> int:
    """Mark failed files as pending so the next run parses them again."""
    failed = [path for path, rec in records(db, collection_id).items() if is_failure(rec.state)]
    set_state(db, collection_id, failed, FileState.PENDING)
    return len(failed)
