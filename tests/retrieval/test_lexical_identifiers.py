"""Identifiers kept whole by the lexical index: ``--cid`` is not "cid"."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval import lexical_index
from retrieval.collections import create_collection
from retrieval.document_db import DocumentDB
from retrieval.identifiers import identifiers, query_identifiers
from retrieval.lexical_index import StoredChunk
from retrieval.locator import Locator


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What does the --cid option do?", ["--cid"]),
        ("Run it with -v, not e-mail", ["-v", "e-mail"]),
        (
            "snake_case, CamelCase, os.path.join() and parse(x)",
            ["snake_case", "camelcase", "os.path.join", "parse"],
        ),
        ("Python 3.11.2 and v0.3, then 1.0rc1", ["3.11.2", "0.3", "1.0rc1"]),
        ("E1101 error, HTTP 404, ENOSPC", ["e1101", "http", "404", "enospc"]),
        (
            "Edit settings.json and .gitignore in src/app/main.py.",
            ["settings.json", ".gitignore", "main.py"],
        ),
        ("compare/3.4.5...3.4.6 and the __init__ method", ["3.4.5", "3.4.6", "__init__"]),
    ],
)
def test_identifiers_are_kept_whole_and_normalized(text: str, expected: list[str]) -> None:
    assert identifiers(text) == expected


def test_prose_has_no_identifiers() -> None:
    prose = "The end. Next, e.g. this, i.e. that, in the U.S. I am OK with 10 of them."
    assert identifiers(prose) == []
    assert query_identifiers("Which way of interrupting a test is the most portable?") == []


def _chunk(n: int, text: str, path: str = "/docs/cli.md") -> StoredChunk:
    return StoredChunk(f"id{n}", path, f"hash{n}", Locator("document", path=path), text)


# Words-only BM25 ranks the two distractors above the definition: they say
# "cid" and "option" more often, in fewer words.
CLI_DOCS = [
    _chunk(1, "The cid option. Every cid option is an option."),
    _chunk(2, "Option cid: see the cid table; the option is cid."),
    _chunk(
        3,
        "Caching. Pass --cid NAME to store results under a content id, for example "
        "tool run --cid nightly report.csv; without it results are not cached.",
    ),
    _chunk(4, "Use snake_case names in settings.json; version 3.11.2 fixed E1101."),
    _chunk(5, "Snake case settings: snake case, settings JSON, case 3 and 11."),
]


def _library(tmp_path: Path) -> tuple[DocumentDB, int]:
    store = DocumentDB(tmp_path)
    with store.transaction() as db:
        cid = create_collection(db, "docs", [tmp_path], []).id
        lexical_index.insert_chunks(db, cid, CLI_DOCS)
    return store, cid


def test_an_option_in_the_question_finds_the_passage_that_defines_it(tmp_path: Path) -> None:
    store, cid = _library(tmp_path)
    db = store.connection()
    top = lexical_index.search(db, [cid], "What does the --cid option do?", 5)
    assert top[0][0] == "id3"
    assert {i for i, _ in top} >= {"id1", "id2", "id3"}  # word matches still count
    for question in ("snake_case", "settings.json", "what changed in 3.11.2?", "E1101"):
        assert lexical_index.search(db, [cid], question, 5)[0][0] == "id4", question
    store.close()


def test_score_ids_matches_search_and_gives_zero_to_no_match(tmp_path: Path) -> None:
    store, cid = _library(tmp_path)
    db = store.connection()
    question = "What does the --cid option do?"
    found = dict(lexical_index.search(db, [cid], question, 5))
    scored = lexical_index.score_ids(db, [cid], question, ["id1", "id3", "id4", "missing"])
    assert scored["id3"] == pytest.approx(found["id3"])
    assert scored["id1"] == pytest.approx(found["id1"])
    assert scored["id4"] == 0.0 and "missing" not in scored
    store.close()


def test_identifier_rows_follow_their_chunks(tmp_path: Path) -> None:
    store, cid = _library(tmp_path)
    db = store.connection()
    assert db.execute("SELECT COUNT(*) FROM chunk_idents").fetchone()[0] == 3  # id3-5 ("JSON")
    with store.transaction() as tx:
        lexical_index.insert_chunks(tx, cid, CLI_DOCS)  # already there: nothing doubles
    assert db.execute("SELECT COUNT(*) FROM chunk_idents").fetchone()[0] == 3
    with store.transaction() as tx:
        lexical_index.delete_paths(tx, cid, ["/docs/cli.md"])
    assert db.execute("SELECT COUNT(*) FROM chunk_idents").fetchone()[0] == 0
    with store.transaction() as tx:
        lexical_index.insert_chunks(tx, cid, CLI_DOCS)
        tx.execute("DELETE FROM collections WHERE id = ?", (cid,))  # cascades to chunks
    assert db.execute("SELECT COUNT(*) FROM chunk_idents").fetchone()[0] == 0
    store.close()


def test_an_index_from_before_identifiers_is_rebuilt_on_open(tmp_path: Path) -> None:
    store, cid = _library(tmp_path)
    with store.transaction() as db:
        # what a database written by the previous release looks like
        db.execute("DROP TRIGGER chunk_idents_ad")
        db.execute("DROP TABLE chunk_idents")
        db.execute("DROP TABLE lexical_meta")
    store.close()
    again = DocumentDB(tmp_path)
    db = again.connection()
    assert lexical_index.search(db, [cid], "--cid", 5)[0][0] == "id3"
    with again.transaction() as tx:
        lexical_index.delete_paths(tx, cid, ["/docs/cli.md"])
    assert db.execute("SELECT COUNT(*) FROM chunk_idents").fetchone()[0] == 0  # trigger back
    again.close()


def test_a_new_lexical_version_rebuilds_the_identifier_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, cid = _library(tmp_path)
    with store.transaction() as db:
        db.execute("DELETE FROM chunk_idents")  # rows the new rules would not write
    store.close()
    monkeypatch.setattr(
        lexical_index, "LEXICAL_SCHEMA_VERSION", lexical_index.LEXICAL_SCHEMA_VERSION + 1
    )
    again = DocumentDB(tmp_path)
    assert lexical_index.search(again.connection(), [cid], "--cid", 5)[0][0] == "id3"
    again.close()


def test_evidence_is_absolute() -> None:
    question = "What does the --cid option do?"
    matched, coverage = lexical_index.evidence(question, CLI_DOCS[2].text)
    assert matched == ("--cid",) and coverage == 0.5  # "cid", not "option"
    matched, coverage = lexical_index.evidence(question, CLI_DOCS[0].text)
    assert matched == () and coverage == 1.0
    assert lexical_index.evidence("the", "anything") == ((), 0.0)


def test_identifier_share_counts_exact_identifiers(tmp_path: Path) -> None:
    store, cid = _library(tmp_path)
    db = store.connection()
    share = lexical_index.identifier_share(
        db, [cid], "Is snake_case allowed in settings.json?", ["id4", "id5", "id3"]
    )
    assert share == {"id4": 1.0, "id5": 0.0, "id3": 0.0}
    assert lexical_index.identifier_share(db, [cid], "what is it about?", ["id4"]) == {}
    store.close()
