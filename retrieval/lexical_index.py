"""The chunks and their lexical (BM25) index, in the documents database.

Each chunk's text, locator and content hash live in ``chunks``; an FTS5 index
over the text (porter stemming, diacritics folded) ranks them with SQLite's
own ``bm25()``. The table is also where search results get their locator and
text, whichever index found them, and where the indexer finds embeddings it
can reuse (same content hash: a renamed file or an unchanged paragraph).

A second FTS5 table, ``chunk_idents``, holds each chunk's identifiers whole
(``--cid``, ``snake_case``, ``3.11.2``, ``settings.json``: see
:mod:`retrieval.identifiers`), one row per chunk under the chunk's rowid. A
question's identifiers are matched there exactly, and a chunk's lexical score
is its word BM25 plus its identifier BM25, so the passage that says ``--cid``
outranks every passage that merely says "cid". That table belongs to this
module: :func:`ensure_schema` creates or rebuilds it from the stored chunk
text whenever ``LEXICAL_SCHEMA_VERSION`` changes (no file is parsed or
embedded again), and a trigger drops a chunk's row with the chunk, however it
goes (a path, a collection's cascade).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from retrieval.identifiers import identifiers, query_identifiers
from retrieval.locator import Locator

# Bump when what goes into chunk_idents changes (the identifier rules, the
# tokenizer): ensure_schema then rebuilds it from the stored chunk text.
LEXICAL_SCHEMA_VERSION = 1
# The word table's tokenizer, as ``chunks_fts`` is made in document_db's first
# migration (a server search tokenizes its candidates with it too).
WORD_TOKENIZER = "porter unicode61 remove_diacritics 2"
# unicode61 with the characters identifiers keep inside them made part of a
# token; the stored text is normalized identifiers separated by spaces.
_IDENT_TOKENIZER = "unicode61 remove_diacritics 0 tokenchars '-_.'"
# An identifier match counts this many times a word match of the same BM25:
# once, so a chunk holding ``--cid`` scores its "cid" word hit twice over,
# and no more, so a question's plain words still decide among such chunks.
IDENT_WEIGHT = 1.0

# Words so common that matching them ranks nothing but makes FTS5 score most
# of the index (slow at 100k chunks). BM25 would weigh them near zero anyway.
_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "do",
        "does",
        "did",
    }
)
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_TERMS = 32


@dataclass(frozen=True)
class StoredChunk:
    id: str
    path: str
    content_hash: str
    locator: Locator
    text: str


def ensure_schema(db: sqlite3.Connection) -> None:
    """Create the identifier table, or rebuild it from ``chunks`` when it was
    built by another ``LEXICAL_SCHEMA_VERSION`` (or by a build that had none).
    Call inside a write transaction, before any chunk is written or deleted:
    the table and its delete trigger are made together, so a database that
    has the table always keeps it in step. A rebuild reads every chunk once:
    2.1 s per 10k chunks of ~1 KB on the 2-core VM, once per version (the
    app opens the library off the GUI thread)."""
    db.execute("CREATE TABLE IF NOT EXISTS lexical_meta (key TEXT PRIMARY KEY, value TEXT)")
    row = db.execute("SELECT value FROM lexical_meta WHERE key = 'schema'").fetchone()
    if row is not None and row[0] == str(LEXICAL_SCHEMA_VERSION):
        return
    db.execute("DROP TRIGGER IF EXISTS chunk_idents_ad")
    db.execute("DROP TABLE IF EXISTS chunk_idents")
    db.execute(
        f'CREATE VIRTUAL TABLE chunk_idents USING fts5(idents, tokenize = "{_IDENT_TOKENIZER}")'
    )
    db.execute(
        "CREATE TRIGGER chunk_idents_ad AFTER DELETE ON chunks BEGIN "
        "DELETE FROM chunk_idents WHERE rowid = old.rowid; END"
    )
    rows = db.execute("SELECT rowid, text FROM chunks")
    while batch := rows.fetchmany(2000):
        _insert_idents(db, batch)
    db.execute(
        "INSERT OR REPLACE INTO lexical_meta (key, value) VALUES ('schema', ?)",
        (str(LEXICAL_SCHEMA_VERSION),),
    )


def _insert_idents(db: sqlite3.Connection, rows: Iterable[tuple[int, str]]) -> None:
    values = []
    for rowid, text in rows:
        found = identifiers(text)
        if found:
            values.append((rowid, " ".join(found)))
    db.executemany("INSERT INTO chunk_idents (rowid, idents) VALUES (?, ?)", values)


def insert_chunks(
    db: sqlite3.Connection, collection_id: int, chunks: Iterable[StoredChunk]
) -> None:
    added: list[tuple[int, str]] = []
    for c in chunks:
        cursor = db.execute(
            "INSERT OR IGNORE INTO chunks (id, collection_id, path, content_hash, locator, text) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (c.id, collection_id, c.path, c.content_hash, json.dumps(c.locator.to_dict()), c.text),
        )
        if cursor.rowcount and cursor.lastrowid is not None:
            added.append((cursor.lastrowid, c.text))  # not a chunk that was already there
    _insert_idents(db, added)


def delete_paths(db: sqlite3.Connection, collection_id: int, paths: Iterable[str]) -> None:
    db.executemany(
        "DELETE FROM chunks WHERE collection_id = ? AND path = ?",
        [(collection_id, p) for p in paths],
    )


def delete_ids(db: sqlite3.Connection, collection_id: int, ids: Sequence[str]) -> None:
    """These chunks of the collection (their FTS rows go by the triggers)."""
    for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
        part = ids[start : start + 500]
        marks = ",".join("?" for _ in part)
        db.execute(
            f"DELETE FROM chunks WHERE collection_id = ? AND id IN ({marks})",
            (collection_id, *part),
        )


def delete_collection_chunks(db: sqlite3.Connection, collection_id: int) -> None:
    db.execute("DELETE FROM chunks WHERE collection_id = ?", (collection_id,))


def ids_by_content_hash(
    db: sqlite3.Connection, collection_id: int, hashes: Sequence[str]
) -> dict[str, str]:
    """content hash -> id of a stored chunk with that text (any path)."""
    found: dict[str, str] = {}
    for start in range(0, len(hashes), 500):  # SQLite's bound-parameter limit
        part = hashes[start : start + 500]
        marks = ",".join("?" for _ in part)
        for chunk_id, content_hash in db.execute(
            f"SELECT id, content_hash FROM chunks WHERE collection_id = ? "
            f"AND content_hash IN ({marks})",
            (collection_id, *part),
        ):
            found.setdefault(content_hash, chunk_id)
    return found


def get_chunks(
    db: sqlite3.Connection, collection_ids: Sequence[int], ids: Sequence[str]
) -> dict[str, StoredChunk]:
    found: dict[str, StoredChunk] = {}
    cids = ",".join(str(int(c)) for c in collection_ids)
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ",".join("?" for _ in part)
        for chunk_id, path, content_hash, locator, text in db.execute(
            f"SELECT id, path, content_hash, locator, text FROM chunks "
            f"WHERE collection_id IN ({cids}) AND id IN ({marks})",
            part,
        ):
            found[chunk_id] = StoredChunk(
                chunk_id, path, content_hash, Locator.from_dict(json.loads(locator)), text
            )
    return found


def chunk_ids(db: sqlite3.Connection, collection_id: int) -> list[str]:
    return [
        r[0] for r in db.execute("SELECT id FROM chunks WHERE collection_id = ?", (collection_id,))
    ]


def query_words(text: str) -> list[str]:
    """The question's distinct words that BM25 looks for, lower-cased, first
    occurrence first: its words less the stopwords (all of them when it has
    nothing else)."""
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word not in _STOPWORDS and word not in terms:
            terms.append(word)
    if not terms:  # a query of stopwords only: use them rather than nothing
        terms = list(dict.fromkeys(_WORD.findall(text.lower())))
    return terms[:MAX_QUERY_TERMS]


def fts_query(text: str) -> str | None:
    """The user's words as an FTS5 OR-query of quoted terms (no FTS syntax
    leaks through: a query like ``C++ AND "x`` is just words)."""
    terms = query_words(text)
    if not terms:
        return None
    return " OR ".join(f'"{t}"' for t in terms)


def evidence(query: str, text: str) -> tuple[tuple[str, ...], float]:
    """(the question's identifiers that ``text`` holds exactly, the share of the
    question's content words it holds): absolute signals of a lexical match,
    unlike BM25, whose scale moves with the corpus and the question's length.
    Words are compared after a crude suffix strip (``reports`` finds
    ``report``), close enough for a share."""
    have = set(identifiers(text))
    matched = tuple(i for i in query_identifiers(query) if i in have)
    words = {_crude_stem(w) for w in _WORD.findall(query.lower()) if w not in _STOPWORDS}
    if not words:
        return matched, 0.0
    present = {_crude_stem(w) for w in _WORD.findall(text.lower())}
    return matched, len(words & present) / len(words)


def identifier_share(
    db: sqlite3.Connection, collection_ids: Sequence[int], query: str, ids: Sequence[str]
) -> dict[str, float]:
    """chunk id -> the share of the question's identifiers it holds exactly
    (0..1), looked up in ``chunk_idents`` (one small FTS5 query per
    identifier, not a re-read of the texts); empty when the question names
    none."""
    wanted = query_identifiers(query)[:MAX_QUERY_TERMS]
    if not wanted or not ids or not collection_ids:
        return {}
    rowid_of = _rowids(db, collection_ids, ids)
    held = dict.fromkeys(rowid_of, 0)
    for ident in wanted:
        for rowid in _bm25_of(db, "chunk_idents", f'"{ident}"', list(rowid_of)):
            held[rowid] += 1
    return {rowid_of[r]: count / len(wanted) for r, count in held.items()}


def _crude_stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def ident_query(text: str) -> str | None:
    """The question's identifiers as an FTS5 OR-query over ``chunk_idents``
    (identifiers hold only word characters, dots and dashes: no quote to escape)."""
    found = query_identifiers(text)[:MAX_QUERY_TERMS]
    return " OR ".join(f'"{t}"' for t in found) if found else None


def search(
    db: sqlite3.Connection, collection_ids: Sequence[int], query: str, k: int
) -> list[tuple[str, float]]:
    """Top ``k`` (chunk id, lexical score; higher is better) in these collections.

    The score is word BM25 plus ``IDENT_WEIGHT`` times identifier BM25. Each
    table hands over its own top ``k``; a chunk found by one is scored by the
    other too, so a chunk with both kinds of match is never ranked by half."""
    if not collection_ids:
        return []
    parts = _parts(query)
    found = {table: dict(_top(db, table, collection_ids, match, k)) for table, match, _ in parts}
    union = set().union(*found.values())
    for table, match, _ in parts:
        found[table].update(_bm25_of(db, table, match, union - found[table].keys()))
    scores = {
        rowid: sum(weight * found[table].get(rowid, 0.0) for table, _, weight in parts)
        for rowid in union
    }
    best = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:k]
    ids = _ids_of(db, [rowid for rowid, _ in best])
    return [(ids[rowid], score) for rowid, score in best if rowid in ids]


def score_ids(
    db: sqlite3.Connection, collection_ids: Sequence[int], query: str, ids: Sequence[str]
) -> dict[str, float]:
    """The lexical score :func:`search` would give each of these chunks
    (0 for a chunk that matches nothing), whether or not it made the top k:
    how the hybrid search scores the dense retriever's candidates."""
    if not ids or not collection_ids:
        return {}
    rowid_of = _rowids(db, collection_ids, ids)
    scores = dict.fromkeys(rowid_of, 0.0)
    for table, match, weight in _parts(query):
        for rowid, score in _bm25_of(db, table, match, list(rowid_of)).items():
            scores[rowid] += weight * score
    return {rowid_of[rowid]: score for rowid, score in scores.items()}


def _parts(query: str) -> list[tuple[str, str, float]]:
    """(FTS5 table, its MATCH expression, weight) for each table this query
    has terms for."""
    parts = []
    for table, match, weight in (
        ("chunks_fts", fts_query(query), 1.0),
        ("chunk_idents", ident_query(query), IDENT_WEIGHT),
    ):
        if match is not None:
            parts.append((table, match, weight))
    return parts


def _top(
    db: sqlite3.Connection, table: str, collection_ids: Sequence[int], match: str, k: int
) -> list[tuple[int, float]]:
    """(chunk rowid, BM25; higher is better) of the best ``k`` in these collections."""
    cids = ",".join(str(int(c)) for c in collection_ids)
    # bm25() is lower-is-better (negative); flip it so every score is higher-is-better.
    total = db.execute("SELECT COUNT(*) FROM collections").fetchone()[0]
    if len(set(collection_ids)) >= total:
        # Searching everything (the usual case): rank inside FTS5 first and
        # join only the top k. Joining every match before ranking was 2x
        # slower at 100k chunks (p50 26 -> 13 ms, p95 68 -> 47 ms).
        sql = (
            f"SELECT f.rowid, f.score FROM (SELECT rowid, -bm25({table}) AS score "
            f"FROM {table} WHERE {table} MATCH ? ORDER BY bm25({table}) LIMIT ?) f "
            f"JOIN chunks c ON c.rowid = f.rowid WHERE c.collection_id IN ({cids})"
        )
        return [(int(r), float(s)) for r, s in db.execute(sql, (match, k))]
    sql = (
        f"SELECT f.rowid, -bm25({table}) FROM {table} f "
        "JOIN chunks c ON c.rowid = f.rowid "
        f"WHERE {table} MATCH ? AND c.collection_id IN ({cids}) "
        f"ORDER BY bm25({table}) LIMIT ?"
    )
    return [(int(r), float(s)) for r, s in db.execute(sql, (match, k))]


def _bm25_of(
    db: sqlite3.Connection, table: str, match: str, rowids: Iterable[int]
) -> dict[int, float]:
    """BM25 (higher is better) of these chunks that match; bm25() over a
    rowid-limited match still uses the whole table's statistics, so these
    scores add up with :func:`_top`'s."""
    wanted = list(rowids)
    found: dict[int, float] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ",".join("?" for _ in part)
        for rowid, score in db.execute(
            f"SELECT rowid, -bm25({table}) FROM {table} "
            f"WHERE {table} MATCH ? AND rowid IN ({marks})",
            (match, *part),
        ):
            found[int(rowid)] = float(score)
    return found


def _rowids(
    db: sqlite3.Connection, collection_ids: Sequence[int], ids: Sequence[str]
) -> dict[int, str]:
    """chunk rowid -> chunk id, for these ids in these collections."""
    cids = ",".join(str(int(c)) for c in collection_ids)
    found: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ",".join("?" for _ in part)
        found.update(
            (int(r), str(i))
            for r, i in db.execute(
                f"SELECT rowid, id FROM chunks WHERE collection_id IN ({cids}) AND id IN ({marks})",
                part,
            )
        )
    return found


def _ids_of(db: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(rowids), 500):
        part = rowids[start : start + 500]
        marks = ",".join("?" for _ in part)
        found.update(
            (int(r), str(i))
            for r, i in db.execute(f"SELECT rowid, id FROM chunks WHERE rowid IN ({marks})", part)
        )
    return found
