"""Per-conversation choices (documents, web mode) stored with the conversation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.history import MIGRATIONS, ConversationStore


def test_a_database_from_before_options_migrates_keeping_its_conversations(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.sqlite3"
    # Exactly what user_version 2 (messages with sources) wrote.
    db = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](db)
    MIGRATIONS[1](db)
    db.execute("PRAGMA user_version = 2")
    db.execute("INSERT INTO conversations VALUES (1, 'Old chat', 1.0, 2.0)")
    db.close()

    store = ConversationStore(path)
    try:
        assert [c.title for c in store.conversations()] == ["Old chat"]
        assert store.conversation_options(1) == {}
        store.set_conversation_options(1, {"web": "auto", "collections": ["team"]})
    finally:
        store.close()
    reopened = ConversationStore(path)
    try:
        assert reopened.conversation_options(1) == {"web": "auto", "collections": ["team"]}
    finally:
        reopened.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_options_go_with_their_conversation_and_damage_reads_as_none(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "history.sqlite3")
    try:
        first, second = store.create_conversation(), store.create_conversation()
        store.set_conversation_options(first.id, {"web": "always"})
        assert store.conversation_options(second.id) == {}
        with sqlite3.connect(store.path) as db:
            db.execute("UPDATE conversations SET options = '{broken' WHERE id = ?", (second.id,))
        assert store.conversation_options(second.id) == {}
        store.delete_conversation(first.id)
        assert store.conversation_options(first.id) == {}
    finally:
        store.close()
