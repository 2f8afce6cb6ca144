from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.chat_template import ChatMessage
from engine.context import SourcePassage, user_content_with_sources
from engine.errors import HistoryError
from engine.history import (
    DEFAULT_TITLE,
    INTERRUPTED,
    MIGRATIONS,
    SOURCE_EXCERPT_MAX_CHARS,
    ConversationStore,
)

NOTES = SourcePassage(
    "Footnote keeps every file on this computer.",
    "notes.md › Privacy",
    "document",
    {"path": "/home/me/notes.md", "heading_path": ["Privacy"], "page": 2},
    "d1",
    0.8,
)
PAGE = SourcePassage(
    "Phi-3 is a small model.",
    "Phi-3 — example.org",
    "web",
    {"url": "https://example.org/phi3", "title": "Phi-3"},
    "w1",
    0.6,
)


@pytest.fixture
def store(tmp_path: Path):
    s = ConversationStore(tmp_path / "history.sqlite3")
    yield s
    s.close()


def test_messages_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    first = ConversationStore(path)
    conv = first.create_conversation()
    first.add_message(conv.id, "user", "What is GGUF?")
    first.add_message(conv.id, "assistant", "A file format.", finish_reason="stop")
    first.close()

    again = ConversationStore(path)
    try:
        [found] = again.conversations()
        assert found.title == "What is GGUF?"  # named after the first question
        messages = again.messages(found.id)
        assert [(m.role, m.content) for m in messages] == [
            ("user", "What is GGUF?"),
            ("assistant", "A file format."),
        ]
        assert messages[1].finish_reason == "stop"
    finally:
        again.close()


def test_rename_delete_and_order(store: ConversationStore) -> None:
    a = store.create_conversation()
    b = store.create_conversation()
    store.add_message(a.id, "user", "newest activity")
    assert [c.id for c in store.conversations()] == [a.id, b.id]
    store.rename_conversation(b.id, "  Trip   planning  ")
    assert store.get_conversation(b.id).title == "Trip planning"  # type: ignore[union-attr]
    store.rename_conversation(b.id, "   ")
    assert store.get_conversation(b.id).title == DEFAULT_TITLE  # type: ignore[union-attr]
    store.delete_conversation(a.id)
    assert [c.id for c in store.conversations()] == [b.id]
    assert store.messages(a.id) == []


def test_model_content_is_kept_only_when_it_differs(store: ConversationStore) -> None:
    conv = store.create_conversation()
    plain = store.add_message(conv.id, "user", "Hi", model_content="Hi")
    assert plain.model_content is None
    store.set_model_content(plain.id, "Sources: ...\n\nQuestion: Hi")
    [stored] = store.messages(conv.id)
    assert stored.as_chat_message().content == "Sources: ...\n\nQuestion: Hi"
    assert stored.content == "Hi"


def test_an_answer_saved_while_written_is_rewritten_then_finished(
    store: ConversationStore,
) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "q")
    draft = store.add_message(conv.id, "assistant", "Part", finish_reason=INTERRUPTED)
    store.update_message(draft.id, "Partial answer", INTERRUPTED)
    assert [(m.content, m.finish_reason) for m in store.messages(conv.id)][-1] == (
        "Partial answer",
        INTERRUPTED,
    )
    store.update_message(draft.id, "Partial answer, finished.", "stop")
    assert store.messages(conv.id)[-1].finish_reason == "stop"
    store.delete_message(draft.id)
    assert [m.role for m in store.messages(conv.id)] == ["user"]


def test_long_first_question_gives_a_short_title(store: ConversationStore) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "word " * 50)
    title = store.get_conversation(conv.id).title  # type: ignore[union-attr]
    assert len(title) <= 60 and title.endswith("…")


def test_database_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(HistoryError, match="newer Footnote"):
        ConversationStore(path)


def test_unwritable_location_is_a_readable_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HistoryError, match="cannot open its conversation database"):
        ConversationStore(blocker / "sub" / "history.sqlite3")


def test_an_answer_keeps_its_sources_in_citation_order(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    first = ConversationStore(path)
    conv = first.create_conversation()
    first.add_message(conv.id, "user", "Is it private?")
    saved = first.add_message(
        conv.id, "assistant", "Yes [1], see [2].", finish_reason="stop", sources=[NOTES, PAGE]
    )
    assert [s.n for s in saved.sources] == [1, 2]
    first.close()

    again = ConversationStore(path)
    try:
        question, answer = again.messages(conv.id)
    finally:
        again.close()
    assert question.sources == ()
    one, two = answer.sources
    assert (one.n, one.citation, one.kind, one.id, one.score) == (
        1,
        "notes.md › Privacy",
        "document",
        "d1",
        0.8,
    )
    assert one.location == {"path": "/home/me/notes.md", "heading_path": ["Privacy"], "page": 2}
    assert (two.n, two.kind, two.location["url"]) == (2, "web", "https://example.org/phi3")
    assert two.text == PAGE.text


def test_sources_of_an_answer_saved_while_written_are_set_at_the_end(
    store: ConversationStore,
) -> None:
    conv = store.create_conversation()
    draft = store.add_message(conv.id, "assistant", "Part", finish_reason=INTERRUPTED)
    store.set_sources(draft.id, [PAGE])
    [stored] = store.messages(conv.id)
    assert [(s.n, s.citation) for s in stored.sources] == [(1, "Phi-3 — example.org")]
    store.set_sources(draft.id, [])
    assert store.messages(conv.id)[0].sources == ()


def test_a_long_passage_is_stored_as_an_excerpt(store: ConversationStore) -> None:
    conv = store.create_conversation()
    long = SourcePassage("x" * 10_000, "big.txt", "document")
    saved = store.add_message(conv.id, "assistant", "a", sources=[long])
    assert len(saved.sources[0].text) == SOURCE_EXCERPT_MAX_CHARS


def test_a_database_from_before_sources_migrates_and_keeps_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    # Exactly what the first released schema (user_version 1) wrote.
    db = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO conversations VALUES (1, 'Old chat', 1.0, 2.0)")
    db.execute(
        "INSERT INTO messages(conversation_id, role, content, model_content, finish_reason, "
        "created_at) VALUES (1, 'user', 'old question', NULL, NULL, 1.0), "
        "(1, 'assistant', 'old answer', NULL, 'stop', 2.0)"
    )
    db.close()

    store = ConversationStore(path)
    try:
        messages = store.messages(1)
        assert [(m.content, m.sources) for m in messages] == [
            ("old question", ()),
            ("old answer", ()),
        ]
        store.set_sources(messages[1].id, [NOTES])
        assert store.messages(1)[1].sources[0].citation == "notes.md › Privacy"
    finally:
        store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_damaged_sources_do_not_hide_the_answer(store: ConversationStore) -> None:
    conv = store.create_conversation()
    saved = store.add_message(conv.id, "assistant", "answer", sources=[NOTES])
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE messages SET sources = '[{\"broken\": ' WHERE id = ?", (saved.id,))
    [stored] = store.messages(conv.id)
    assert stored.content == "answer" and stored.sources == ()


def test_a_question_keeps_its_sources_apart_whole_and_renders_as_sent(
    store: ConversationStore,
) -> None:
    conv = store.create_conversation()
    question = store.add_message(conv.id, "user", "Is it private?")
    long = SourcePassage("y" * 10_000, "big.txt", "document")
    store.set_sent_sources(question.id, [NOTES, long])
    [stored] = store.messages(conv.id)
    assert stored.content == "Is it private?"  # as the user wrote it
    assert [len(s.text) for s in stored.sent_sources] == [len(NOTES.text), 10_000]  # whole
    assert stored.sources == ()  # the answer's sources are the answer's
    earlier = stored.as_earlier_message()
    assert earlier.text == "Is it private?"
    assert stored.as_chat_message() == ChatMessage(
        "user", user_content_with_sources("Is it private?", [NOTES, long])
    )


def test_a_conversation_stored_with_the_rendered_question_upgrades_and_continues(
    tmp_path: Path,
) -> None:
    """Before migration 5 the text the model saw was stored in model_content:
    it is sent as it was (the KV cache and the model see the same), and the
    question is the one the user wrote."""
    path = tmp_path / "history.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:4]:
        migration(db)
    db.execute("PRAGMA user_version = 4")
    rendered = user_content_with_sources("Why?", [NOTES])
    db.execute(
        "INSERT INTO conversations(id, title, created_at, updated_at) VALUES (1, 'Old', 1, 2)"
    )
    db.execute(
        "INSERT INTO messages(conversation_id, role, content, model_content, finish_reason, "
        "created_at, parent_id) VALUES (1, 'user', 'Why?', ?, NULL, 1.0, NULL)",
        (rendered,),
    )
    db.close()

    store = ConversationStore(path)
    try:
        [question] = store.messages(1)
        assert question.sent_sources == ()
        earlier = question.as_earlier_message()
        assert earlier.text == "Why?" and earlier.as_sent() == ChatMessage("user", rendered)
        # Sent again (regenerated) by this version: the sources are kept apart now.
        store.set_sent_sources(question.id, [PAGE])
        [again] = store.messages(1)
        assert again.model_content is None
        assert again.as_chat_message() == ChatMessage(
            "user", user_content_with_sources("Why?", [PAGE])
        )
    finally:
        store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
