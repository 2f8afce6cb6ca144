"""Which chunker cut a collection's files, so a better one re-chunks them.

An index is tied to the embedder that built it (``collections.model_id``) and,
here, to the version of the parsing and chunking rules that cut its files
(``chunking.CHUNKER_VERSION``). When the version recorded for a collection is
not the running one, every file indexed under the old rules is marked
``changed``: the next run reads and cuts it again, as if it had been edited.
Chunks whose text comes out the same keep their vectors (the indexer reuses
vectors by content hash), so a change that touches a few chunks costs a
re-parse, not a re-embed.

The table is created where it is first used rather than by a migration, like
``lexical_index``'s own table: it belongs to this concern alone, and an
index from before it existed simply has no row, which reads as "cut by an
older chunker" and re-chunks once.
"""

from __future__ import annotations

import sqlite3

from retrieval.manifest import FileState

# Files whose chunks come from the chunker: indexed ones, and those it found
# no text in (the new rules may find some). Failures stay as they are: they
# failed before chunking, and "retry failed" is the user's to press.
_RECHUNK_STATES = (FileState.INDEXED, FileState.NO_TEXT)


def bind_chunker(db: sqlite3.Connection, collection_id: int, version: int) -> int:
    """Record that ``version`` cuts this collection's files. If another
    version (or none) did, mark its files ``changed`` first. Returns how many
    files were marked. Call inside a write transaction."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS collection_chunkers ("
        "collection_id INTEGER PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE, "
        "version INTEGER NOT NULL)"
    )
    row = db.execute(
        "SELECT version FROM collection_chunkers WHERE collection_id = ?", (collection_id,)
    ).fetchone()
    if row is not None and row[0] == version:
        return 0
    marks = ", ".join("?" for _ in _RECHUNK_STATES)
    cursor = db.execute(
        f"UPDATE files SET state = ? WHERE collection_id = ? AND state IN ({marks})",
        (FileState.CHANGED, collection_id, *_RECHUNK_STATES),
    )
    db.execute(
        "INSERT INTO collection_chunkers (collection_id, version) VALUES (?, ?) "
        "ON CONFLICT (collection_id) DO UPDATE SET version = excluded.version",
        (collection_id, version),
    )
    return cursor.rowcount
