"""Versions and branches in the conversation database: a regenerated answer
and an edited question are added beside the earlier ones, never instead."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.context import SourcePassage
from engine.history import MIGRATIONS, ConversationStore, NewMessage

NOTES = SourcePassage(
    "Footnote keeps every file on this computer.",
    "notes.md › Privacy",
    "document",
    {"path": "/home/me/notes.md", "heading_path": ["Privacy"]},
    "d1",
    0.8,
)


@pytest.fixture
def store(tmp_path: Path):
    s = ConversationStore(tmp_path / "history.sqlite3")
    yield s
    s.close()


def test_a_regenerated_answer_is_a_new_version_and_the_first_stays(
    store: ConversationStore,
) -> None:
    conv = store.create_conversation()
    question = store.add_message(conv.id, "user", "What is GGUF?")
    first = store.add_message(conv.id, "assistant", "A file format.", sources=[NOTES])
    second = store.add_message(
        conv.id, "assistant", "llama.cpp's model file.", parent_id=question.id, model="Phi-3"
    )
    shown = store.messages(conv.id)
    assert [m.content for m in shown] == ["What is GGUF?", "llama.cpp's model file."]
    assert shown[1].versions == (first.id, second.id) and shown[1].version == 2
    assert shown[1].model == "Phi-3"

    store.select(first.id)
    shown = store.messages(conv.id)
    assert [m.content for m in shown] == ["What is GGUF?", "A file format."]
    assert shown[1].version == 1
    assert shown[1].sources[0].citation == "notes.md › Privacy"  # sources stay with their version


def test_an_edited_question_branches_and_the_old_branch_stays_reachable(
    store: ConversationStore,
) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "One")
    store.add_message(conv.id, "assistant", "Answer one")
    two = store.add_message(conv.id, "user", "Two")
    store.add_message(conv.id, "assistant", "Answer two")
    store.add_message(conv.id, "user", "Three")
    store.add_message(conv.id, "assistant", "Answer three")

    edited = store.add_message(conv.id, "user", "Two, edited", parent_id=two.parent_id)
    store.add_message(conv.id, "assistant", "Answer to the edit")
    assert [m.content for m in store.messages(conv.id)] == [
        "One",
        "Answer one",
        "Two, edited",
        "Answer to the edit",
    ]
    assert store.messages(conv.id)[2].versions == (two.id, edited.id)

    # Back to the first version: the rest of that branch comes with it.
    store.select(two.id)
    assert [m.content for m in store.messages(conv.id)][2:] == [
        "Two",
        "Answer two",
        "Three",
        "Answer three",
    ]
    # A new question continues the branch shown.
    store.add_message(conv.id, "user", "Four")
    assert [m.content for m in store.messages(conv.id)][-3:] == ["Three", "Answer three", "Four"]
    assert len(store.all_messages(conv.id)) == 9


def test_deleting_a_failed_version_shows_the_branch_before_it(store: ConversationStore) -> None:
    conv = store.create_conversation()
    question = store.add_message(conv.id, "user", "q")
    answer = store.add_message(conv.id, "assistant", "a")
    draft = store.add_message(conv.id, "assistant", "", parent_id=question.id)
    store.delete_message(draft.id)
    assert [m.id for m in store.messages(conv.id)] == [question.id]
    store.select(answer.id)
    assert [m.id for m in store.messages(conv.id)] == [question.id, answer.id]
    assert store.messages(conv.id)[1].versions == (answer.id,)


def test_deleting_a_message_in_the_middle_keeps_what_followed(store: ConversationStore) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "q1")
    a1 = store.add_message(conv.id, "assistant", "a1")
    store.add_message(conv.id, "user", "q2")
    store.delete_message(a1.id)
    assert [m.content for m in store.messages(conv.id)] == ["q1", "q2"]


def test_a_database_from_before_versions_upgrades_with_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    # Exactly what the schema before versions (user_version 3) held.
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:3]:
        migration(db)
    db.execute("PRAGMA user_version = 3")
    db.execute("INSERT INTO conversations VALUES (1, 'Old chat', 1.0, 4.0, '{\"web\": \"off\"}')")
    db.execute("INSERT INTO conversations VALUES (2, 'Other chat', 1.5, 3.5, NULL)")
    db.execute(
        "INSERT INTO messages(conversation_id, role, content, model_content, finish_reason, "
        "created_at, sources) VALUES "
        "(1, 'user', 'old question', 'sources…\n\nQuestion: old question', NULL, 1.0, NULL), "
        "(2, 'user', 'other question', NULL, NULL, 1.5, NULL), "
        "(1, 'assistant', 'old answer [1]', NULL, 'stop', 2.0, "
        """'[{"n": 1, "text": "t", "citation": "notes.md", "kind": "document", """
        """"location": {"path": "/n.md", "page": 3}, "id": "x", "score": 0.5}]'), """
        "(1, 'user', 'follow-up', NULL, NULL, 3.0, NULL), "
        "(1, 'assistant', 'second answer', NULL, 'cancelled', 4.0, NULL)"
    )
    db.close()

    store = ConversationStore(path)
    try:
        messages = store.messages(1)
        assert [(m.role, m.content, m.finish_reason) for m in messages] == [
            ("user", "old question", None),
            ("assistant", "old answer [1]", "stop"),
            ("user", "follow-up", None),
            ("assistant", "second answer", "cancelled"),
        ]
        assert messages[0].as_chat_message().content == "sources…\n\nQuestion: old question"
        assert messages[1].sources[0].location == {"path": "/n.md", "page": 3}
        assert all(m.versions == (m.id,) for m in messages)
        assert [m.content for m in store.messages(2)] == ["other question"]
        assert store.conversation_options(1) == {"web": "off"}
        assert [c.title for c in store.conversations()] == ["Old chat", "Other chat"]
        # And it branches like a new one.
        store.add_message(1, "assistant", "regenerated", parent_id=messages[2].id)
        assert store.messages(1)[-1].versions == (messages[3].id, store.messages(1)[-1].id)
    finally:
        store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_an_imported_conversation_is_inserted_whole_with_its_branch(
    store: ConversationStore,
) -> None:
    conv = store.insert_conversation(
        "Imported",
        [
            NewMessage("user", "q", created_at=1.0),
            NewMessage("assistant", "a1", parent=0, sources=[NOTES], created_at=2.0),
            NewMessage("assistant", "a2", parent=0, model="Phi-3", created_at=3.0),
        ],
        head=1,
        created_at=1.0,
        updated_at=3.0,
        options={"web": "auto"},
    )
    shown = store.messages(conv.id)
    assert [m.content for m in shown] == ["q", "a1"]
    assert shown[1].version == 1 and len(shown[1].versions) == 2
    assert [m.created_at for m in store.all_messages(conv.id)] == [1.0, 2.0, 3.0]
    assert store.conversation_options(conv.id) == {"web": "auto"}
    assert store.get_conversation(conv.id) == conv


def test_an_import_with_a_parent_after_its_child_saves_nothing(store: ConversationStore) -> None:
    from engine.errors import HistoryError

    with pytest.raises(HistoryError):
        store.insert_conversation(
            "Broken", [NewMessage("user", "q", parent=1), NewMessage("assistant", "a")]
        )
    assert store.conversations() == []
