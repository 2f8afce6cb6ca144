"""The conversation database's schema: its migrations, in order.

Append only; never edit a released migration (``PRAGMA user_version`` counts
the ones applied, ``storage.sqlite_schema.migrate`` applies the rest and
refuses a database written by a newer Footnote). v4 made messages a tree
(branches), v5 keeps a question and the sources sent with it apart, v6 adds
full-text search over messages, their cited sources and titles.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from storage.sqlite_schema import run_script


def _v1(db: sqlite3.Connection) -> None:
    _run_statements(
        db,
        """
        CREATE TABLE conversations (
            id          INTEGER PRIMARY KEY,
            title       TEXT    NOT NULL,
            created_at  REAL    NOT NULL,
            updated_at  REAL    NOT NULL
        );
        CREATE TABLE messages (
            id              INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role            TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content         TEXT    NOT NULL,
            -- what the model saw, when it differs from content (sources added)
            model_content   TEXT,
            -- 'stop' | 'cancelled' | 'length' for answers
            finish_reason   TEXT,
            created_at      REAL    NOT NULL
        );
        CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
        """,
    )


# Not executescript(): it commits first, and a migration must be atomic.
_run_statements = run_script


def _v2(db: sqlite3.Connection) -> None:
    # The sources an answer was given (JSON list, see StoredSource), so a
    # reopened conversation shows its citations and can open them.
    db.execute("ALTER TABLE messages ADD COLUMN sources TEXT")


def _v3(db: sqlite3.Connection) -> None:
    # Per-conversation choices (which document collections, web search mode),
    # as a JSON object the app reads; kept here, not in settings, so they go
    # when the conversation is deleted.
    db.execute("ALTER TABLE conversations ADD COLUMN options TEXT")


def _v4(db: sqlite3.Connection) -> None:
    # Versions and branches (engine.branches): each message's parent, so a
    # regenerated answer or an edited question is another child of the same
    # parent and the earlier ones stay; the conversation's head is the end of
    # the branch shown (NULL: its newest message). Which model wrote an answer.
    # Messages stored before this were one line: each one's parent is the
    # message before it.
    _run_statements(
        db,
        """
        ALTER TABLE messages ADD COLUMN parent_id INTEGER;
        ALTER TABLE messages ADD COLUMN model TEXT;
        ALTER TABLE conversations ADD COLUMN head_id INTEGER;
        UPDATE messages SET parent_id = (
            SELECT MAX(earlier.id) FROM messages AS earlier
            WHERE earlier.conversation_id = messages.conversation_id AND earlier.id < messages.id
        );
        CREATE INDEX messages_by_parent ON messages(parent_id)
        """,
    )


def _v5(db: sqlite3.Connection) -> None:
    # A question's sources kept apart from it: the passages sent with it,
    # exactly as sent (JSON, see StoredSource, not cut to an excerpt), so the
    # next turn renders the same text for the model (EarlierMessage) and the
    # question stays as the user wrote it. Questions stored before keep the
    # text the model saw in model_content, and it is sent as it was.
    db.execute("ALTER TABLE messages ADD COLUMN sent_sources TEXT")


# The names of the sources an answer cites, one a line, for the search index
# (X: NEW or messages). A malformed sources value indexes none.
_CITED = """(SELECT group_concat(json_extract(value, '$.citation'), char(10))
    FROM json_each(CASE WHEN json_valid(X.sources) THEN X.sources ELSE '[]' END))"""


def _v6(db: sqlite3.Connection) -> None:
    # Full-text search of the conversations (engine.history_search): titles,
    # and each message's text and the names of the sources it cites, in FTS5
    # tables keyed by the conversation's / message's id, kept in step by
    # triggers (every path that writes a message or a title, the streaming
    # draft included). The conversations stored before are indexed here.
    # Diacritics are folded: "cafe" finds "café".
    cited, new_cited = _CITED.replace("X.", "messages."), _CITED.replace("X.", "NEW.")
    _run_statements(
        db,
        f"""
        CREATE VIRTUAL TABLE message_search USING fts5(
            content, sources, tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE VIRTUAL TABLE conversation_search USING fts5(
            title, tokenize = 'unicode61 remove_diacritics 2'
        );
        INSERT INTO message_search (rowid, content, sources)
            SELECT id, content, {cited} FROM messages WHERE role != 'system';
        INSERT INTO conversation_search (rowid, title) SELECT id, title FROM conversations;
        CREATE TRIGGER message_search_insert AFTER INSERT ON messages
        WHEN NEW.role != 'system' BEGIN
            INSERT INTO message_search (rowid, content, sources)
            VALUES (NEW.id, NEW.content, {new_cited});
        END;
        CREATE TRIGGER message_search_update AFTER UPDATE OF content, sources ON messages
        WHEN NEW.role != 'system' BEGIN
            DELETE FROM message_search WHERE rowid = OLD.id;
            INSERT INTO message_search (rowid, content, sources)
            VALUES (NEW.id, NEW.content, {new_cited});
        END;
        CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
            DELETE FROM message_search WHERE rowid = OLD.id;
        END;
        CREATE TRIGGER conversation_search_insert AFTER INSERT ON conversations BEGIN
            INSERT INTO conversation_search (rowid, title) VALUES (NEW.id, NEW.title);
        END;
        CREATE TRIGGER conversation_search_update AFTER UPDATE OF title ON conversations BEGIN
            DELETE FROM conversation_search WHERE rowid = OLD.id;
            INSERT INTO conversation_search (rowid, title) VALUES (NEW.id, NEW.title);
        END;
        CREATE TRIGGER conversation_search_delete AFTER DELETE ON conversations BEGIN
            DELETE FROM conversation_search WHERE rowid = OLD.id;
        END
        """,
    )


# Append only; never edit a released migration. user_version = len(applied).
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _v1,
    _v2,
    _v3,
    _v4,
    _v5,
    _v6,
)
