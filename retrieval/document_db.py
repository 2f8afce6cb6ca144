"""The documents database: one SQLite file holding the collections, the
per-file manifest, the chunks and their FTS5 (BM25) index.

The manifest and the lexical index share this file on purpose: a chunk's
lexical rows and its file's manifest row change in one transaction, so they
can never disagree. Only the vector index (chromadb) lives elsewhere; the
indexer orders its writes so that the manifest (the source of truth) always
knows which files may have vectors in flight (state ``indexing``).

SQLite connections cannot be shared between threads; the app indexes on one
worker thread and searches on another, so :class:`DocumentDB` hands each
thread its own connection (WAL mode lets readers and the writer overlap).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from retrieval import lexical_index
from retrieval.errors import IndexUnavailable
from storage.sqlite_schema import NewerSchema, migrate

# Each entry upgrades the schema by one version; never edit a released one.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE collections (
        -- AUTOINCREMENT: an id is never reused, so a removed collection's
        -- leftover vectors (named by id) can never be taken for a new one's
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        roots TEXT NOT NULL,          -- JSON list of absolute paths
        excludes TEXT NOT NULL,       -- JSON list of gitignore-style patterns (the user's)
        created_ns INTEGER NOT NULL,
        model_id TEXT                 -- embedder that built the vectors; NULL before the first run
    );
    CREATE TABLE files (
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        mtime_ns INTEGER NOT NULL DEFAULT 0,
        sha256 TEXT,
        state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        chunks INTEGER NOT NULL DEFAULT 0,
        updated_ns INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (collection_id, path)
    );
    CREATE INDEX files_by_state ON files(collection_id, state);
    CREATE TABLE chunks (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        locator TEXT NOT NULL,        -- JSON, retrieval.locator.Locator.to_dict()
        text TEXT NOT NULL,
        UNIQUE (collection_id, id)
    );
    CREATE INDEX chunks_by_path ON chunks(collection_id, path);
    CREATE INDEX chunks_by_hash ON chunks(collection_id, content_hash);
    -- External-content FTS5: the text is stored once (in chunks), triggers
    -- keep the index in step. porter stemming: "reports" finds "report".
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        text, content='chunks', content_rowid='rowid',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, text) VALUES (new.rowid, new.text);
    END;
    CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    END;
    """,
    # 2: a collection may follow links to files and folders outside its own
    # folders (off by default: a link to /etc or ~/.ssh is not indexed).
    """
    ALTER TABLE collections ADD COLUMN follow_links_outside INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: collections on a Chroma server (retrieval/server_collections.py): only
    # where they are and how their paths map here; the server holds the rest.
    """
    CREATE TABLE server_collections (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,          -- as the user sees it in Footnote
        url TEXT NOT NULL,                  -- the Chroma server
        remote_name TEXT NOT NULL,          -- the collection's name on the server
        path_map TEXT NOT NULL DEFAULT '[]', -- JSON [[server prefix, local prefix], ...]
        created_ns INTEGER NOT NULL
    );
    """,
    # 4: an offline copy of a server collection, made when the user asks
    # (retrieval/offline_copy.py): a hidden collection whose chunks and
    # vectors are the server's, pulled as they are (no re-embedding), so the
    # same hybrid search answers from it while the server cannot be reached.
    # It goes with its server collection (ON DELETE CASCADE), its chunks with it.
    """
    ALTER TABLE collections ADD COLUMN
        copy_of INTEGER REFERENCES server_collections(id) ON DELETE CASCADE;
    ALTER TABLE server_collections ADD COLUMN offline_copy INTEGER NOT NULL DEFAULT 0;
    -- the server's change marker when the copy last listed it (NULL: never)
    ALTER TABLE server_collections ADD COLUMN copy_marker TEXT;
    -- when the copy last agreed with the server, and when it last compared every id
    ALTER TABLE server_collections ADD COLUMN copy_synced_ns INTEGER;
    ALTER TABLE server_collections ADD COLUMN copy_listed_ns INTEGER;
    """,
)

DB_FILE = "documents.sqlite3"
BUSY_TIMEOUT_S = 30.0


class DocumentDB:
    """Per-thread connections to the documents database in ``folder``."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / DB_FILE
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        try:
            with self.transaction() as db:
                migrate(db, _MIGRATIONS)
                # lexical_index versions its own identifier table (rebuilt from
                # the stored chunk text when its rules change)
                lexical_index.ensure_schema(db)
        except NewerSchema as exc:
            self.close()
            raise IndexUnavailable(
                f"The document index {self.path} was written by a newer Footnote ({exc}). "
                "Update Footnote, or move that folder away and index your documents again.",
                detail=repr(exc),
            ) from exc

    def connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                # check_same_thread=False only so close() may close every
                # thread's connection; each connection is still used by one thread.
                db = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,
                )
                db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a power cut may lose the last commits but
                # never corrupts; a killed process loses nothing committed.
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise IndexUnavailable(
                    f"The document index {self.path} cannot be opened; check the disk "
                    "and its permissions.",
                    detail=repr(exc),
                ) from exc
            self._local.db = db
            with self._all_lock:
                self._all.append(db)
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on this thread's connection."""
        db = self.connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()
