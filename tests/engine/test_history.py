from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.errors import HistoryError
from engine.history import DEFAULT_TITLE, INTERRUPTED, MIGRATIONS, ConversationStore


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
