"""The BM25 a server search computes from its candidates' text is the local
index's BM25: same tokens, stems and formula (given the same counts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from retrieval import collections as collection_store
from retrieval import lexical_index
from retrieval.document_db import DocumentDB
from retrieval.lexical_index import WORD_TOKENIZER, StoredChunk
from retrieval.locator import Locator
from retrieval.server_lexical import bm25_scores, query_terms, regex_literal

TEXTS = [
    "The annual report lists every cost of the water plant, reported by quarter.",
    "Reports from the field: the plant's water costs rose in spring.",
    "Run the tool with --frob-level 3; error E4711 means the canary failed.",
    "A recipe: bake the bread at 220 degrees for forty minutes.",
    "Quarterly reporting is due on the first Monday; costs go in settings.json.",
    "Nothing here matches anything a question would ask about.",
] * 3  # repeated so BM25's idf is positive for every term


def test_the_word_tokenizer_is_the_local_index_one() -> None:
    from retrieval import document_db

    assert f"tokenize='{WORD_TOKENIZER}'" in document_db._MIGRATIONS[0]


@pytest.mark.parametrize(
    "question",
    ["water plant costs", "annual reports", "--frob-level E4711", "settings.json reporting"],
)
def test_scores_equal_the_local_bm25(tmp_path: Path, question: str) -> None:
    db = DocumentDB(tmp_path)
    try:
        with db.transaction() as conn:
            collection = collection_store.create_collection(conn, "c", [tmp_path], [])
            lexical_index.insert_chunks(
                conn,
                collection.id,
                [
                    StoredChunk(f"c{n}", "/p", f"h{n}", Locator("document", path="/p"), text)
                    for n, text in enumerate(TEXTS)
                ],
            )
        local = dict(lexical_index.search(db.connection(), [collection.id], question, 50))
    finally:
        db.close()
    terms = query_terms(question)
    # document frequencies as the server's filters count them
    counts = {
        t: sum(1 for text in TEXTS if re.search(t.pattern.removeprefix("(?i)"), text, re.I))
        for t in terms
    }
    texts = {f"c{n}": text for n, text in enumerate(TEXTS)}
    mine = bm25_scores(texts, terms, counts, len(TEXTS))
    assert set(local) == {i for i, s in mine.items() if s > 0}
    for chunk_id, score in local.items():
        assert mine[chunk_id] == pytest.approx(score, rel=0.05), chunk_id


def test_terms_and_their_filters() -> None:
    terms = {(t.kind, t.token): t.pattern for t in query_terms("Reports on --frob-level?")}
    assert terms[("word", "report")] == r"(?i)\breport"  # the stem finds "reports", "reporting"
    assert terms[("ident", "--frob-level")] == r"(?i)\-\-frob\-level"
    assert regex_literal("a.b(c)*") == r"a\.b\(c\)\*"
