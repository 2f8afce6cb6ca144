"""The conversation database's durability settings: WAL with
synchronous=NORMAL, so saving a streaming answer's draft never waits on an
fsync, while a killed app still keeps every committed message
(tests/app/test_clean_exit.py kills it mid-answer)."""

from __future__ import annotations

from pathlib import Path

from engine.history import ConversationStore

SQLITE_SYNCHRONOUS_NORMAL = 1  # PRAGMA synchronous values: 0 OFF, 1 NORMAL, 2 FULL


def test_commits_do_not_fsync_but_survive_a_reopen(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    try:
        # Per-connection settings: only the store's own connection can tell.
        db = store._db
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == SQLITE_SYNCHRONOUS_NORMAL
        conv = store.create_conversation()
        store.add_message(conv.id, "user", "kept")
    finally:
        store.close()
    again = ConversationStore(tmp_path / "c.sqlite3")
    try:
        assert [m.content for m in again.messages(conv.id)] == ["kept"]
    finally:
        again.close()


def test_a_full_database_is_said_in_one_sentence_and_loses_nothing(tmp_path: Path) -> None:
    """SQLite's own "full" (SQLITE_FULL, here from a page cap, as from a full
    disk) is recognised by its code, not its wording."""
    import pytest

    from engine.errors import HistoryError

    store = ConversationStore(tmp_path / "c.sqlite3")
    conversation = store.create_conversation()
    store.add_message(conversation.id, "user", "kept")
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(HistoryError, match="the disk is full"):
        store.add_message(conversation.id, "assistant", "x" * 200_000)
    assert [m.content for m in store.messages(conversation.id)] == ["kept"]
