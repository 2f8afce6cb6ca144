"""Searching the conversations: titles, messages and cited source names, in
the real SQLite FTS5 index of the history database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.context import SourcePassage
from engine.history import MIGRATIONS, ConversationStore
from engine.history_search import LINE_MAX_CHARS, fold, matching_line

REPORT = SourcePassage(
    "Revenue grew 12%.",
    "annual-report.pdf, p. 4",
    "document",
    {"path": "/home/me/annual-report.pdf", "page": 4},
    "d1",
    0.8,
)


@pytest.fixture
def store(tmp_path: Path):
    s = ConversationStore(tmp_path / "history.sqlite3")
    yield s
    s.close()


def highlighted(line: str, spans: tuple[tuple[int, int], ...]) -> list[str]:
    return [line[start:end] for start, end in spans]


def test_messages_are_found_with_their_matching_line(store: ConversationStore) -> None:
    birds = store.create_conversation("Birds")
    store.add_message(birds.id, "user", "Tell me about herons")
    answer = store.add_message(
        birds.id,
        "assistant",
        "Herons are wading birds.\nThe Heron budget doubled in spring.\nThey eat fish.",
    )
    other = store.create_conversation("Cooking")
    store.add_message(other.id, "user", "How long do I boil an egg?")

    [hit] = store.search("heron budg")  # every word, the last as a prefix
    assert (hit.conversation_id, hit.message_id, hit.role) == (birds.id, answer.id, "assistant")
    assert hit.where == "message" and hit.title == "Birds"
    assert hit.line == "The Heron budget doubled in spring."
    assert highlighted(hit.line, hit.spans) == ["Heron", "budget"]
    assert store.search("EGG")[0].conversation_id == other.id
    assert store.search("tortoise") == []
    assert store.search('"" AND * (') == []  # FTS5 syntax is just characters


def test_titles_and_cited_sources_are_found(store: ConversationStore) -> None:
    conv = store.create_conversation("Quarterly numbers")
    answer = store.add_message(conv.id, "assistant", "It grew [1].", sources=[REPORT])
    title_hit = store.search("quarterly")[0]
    assert (title_hit.where, title_hit.message_id) == ("title", None)
    assert highlighted(title_hit.line, title_hit.spans) == ["Quarterly"]
    [source_hit] = store.search("annual report")
    assert (source_hit.where, source_hit.message_id) == ("sources", answer.id)
    assert source_hit.line == "annual-report.pdf, p. 4"
    assert highlighted(source_hit.line, source_hit.spans) == ["annual", "report"]


def test_the_index_follows_edits_renames_deletes_and_versions(store: ConversationStore) -> None:
    conv = store.create_conversation()
    draft = store.add_message(conv.id, "assistant", "Writing…", finish_reason="interrupted")
    store.update_message(draft.id, "The otter sleeps afloat.", "stop")  # the streamed answer
    assert [h.message_id for h in store.search("otter")] == [draft.id]
    assert store.search("writing") == []
    store.rename_conversation(conv.id, "Otters")
    assert [h.where for h in store.search("otters")][0] == "title"
    # another version of the answer: both are found (the old branch stays reachable)
    question = store.add_message(conv.id, "user", "And seals?", parent_id=None)
    again = store.add_message(
        conv.id, "assistant", "Seals sleep afloat too.", parent_id=question.id
    )
    other = store.add_message(conv.id, "assistant", "Seals nap on land.", parent_id=question.id)
    assert {h.message_id for h in store.search("seals")} >= {again.id, other.id}
    store.delete_message(other.id)
    assert other.id not in {h.message_id for h in store.search("seals")}
    store.delete_conversation(conv.id)  # its messages go by cascade: so do their entries
    assert store.search("otter") == [] and store.search("seals") == []


def test_case_and_diacritics_fold(store: ConversationStore) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "Un café à Zürich, s'il vous plaît")
    [hit] = [h for h in store.search("cafe zurich") if h.where == "message"]
    assert highlighted(hit.line, hit.spans) == ["café", "Zürich"]
    assert fold("Café ZÜRICH") == "cafe zurich"


def test_a_long_line_is_cut_around_the_match() -> None:
    text = "word " * 100 + "the heron flew " + "more " * 100
    line, spans = matching_line(text, ["heron"])
    assert len(line) <= LINE_MAX_CHARS + 2 and line.startswith("…") and line.endswith("…")
    assert highlighted(line, spans) == ["heron"]


def test_conversations_stored_before_are_indexed_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = ConversationStore(path)
    conv = store.create_conversation("Old chat about walruses")
    store.add_message(conv.id, "assistant", "Walruses have tusks [1].", sources=[REPORT])
    store.close()
    # The database as the previous version left it: no search tables yet.
    with sqlite3.connect(path) as db:
        for table in ("message_search", "conversation_search"):
            db.execute(f"DROP TABLE {table}")
        for trigger in [
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        ]:
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")

    store = ConversationStore(path)
    try:
        wheres = sorted(h.where for h in store.search("walruses"))
        assert wheres == ["message", "title"]
        assert store.search("annual")[0].where == "sources"
    finally:
        store.close()
