"""Conversations in SQLite, with ordered migrations (engine/history_schema.py).

Each message is committed as soon as it exists (the question when it is sent,
the answer when it ends), in WAL mode, so killing the app mid-answer loses
nothing that was already on screen before that answer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.branches import children_of, head_of, latest_leaf, path_to, versions
from engine.chat_template import ChatMessage, Role
from engine.context import EarlierMessage
from engine.errors import HistoryError
from engine.history_schema import MIGRATIONS
from engine.history_search import SEARCH_LIMIT, SearchHit, search_conversations
from engine.passages import Passage, SourceKind
from storage.sqlite_schema import NewerSchema, migrate

log = logging.getLogger(__name__)

DEFAULT_TITLE = "New chat"
# finish_reason of an answer still being written (or cut off by a crash).
INTERRUPTED = "interrupted"
TITLE_MAX_CHARS = 60
# A stored source keeps this much of its passage: enough to show and to check
# what the answer cited (passages are ~512 characters), not a second index.
SOURCE_EXCERPT_MAX_CHARS = 2000


# add_message's default parent: the end of the branch shown.
AFTER_HEAD = -1


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class StoredSource:
    """A source saved with an answer; also a ``engine.context.Passage``.
    ``n`` is its number in the answer's citations ([1], [2], …)."""

    n: int
    text: str  # the passage, up to SOURCE_EXCERPT_MAX_CHARS
    citation: str
    kind: SourceKind
    location: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""
    score: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "text": self.text,
            "citation": self.citation,
            "kind": self.kind,
            "location": dict(self.location),
            "id": self.id,
            "score": self.score,
        }

    @classmethod
    def of(
        cls, n: int, passage: Passage, *, max_chars: int | None = SOURCE_EXCERPT_MAX_CHARS
    ) -> StoredSource:
        """``max_chars`` None: the whole text (a question's sources, as sent)."""
        return cls(
            n=n,
            text=passage.text if max_chars is None else passage.text[:max_chars],
            citation=passage.citation,
            kind=passage.kind,
            location=dict(passage.location),
            id=passage.id,
            score=float(passage.score),
        )


def _sources_json(
    sources: Sequence[Passage], *, max_chars: int | None = SOURCE_EXCERPT_MAX_CHARS
) -> str | None:
    if not sources:
        return None
    stored = [
        StoredSource.of(n, p, max_chars=max_chars).to_json() for n, p in enumerate(sources, start=1)
    ]
    # default=str: a location value that is not JSON (a Path) is kept as text.
    return json.dumps(stored, ensure_ascii=False, default=str)


def _sources_from_json(text: str | None) -> tuple[StoredSource, ...]:
    if not text:
        return ()
    try:
        return tuple(
            StoredSource(
                n=int(item["n"]),
                text=str(item.get("text", "")),
                citation=str(item.get("citation", "")),
                kind="web" if item.get("kind") == "web" else "document",
                location=dict(item.get("location") or {}),
                id=str(item.get("id", "")),
                score=float(item.get("score", 0.0)),
            )
            for item in json.loads(text)
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        # A damaged sources field must not hide the answer itself.
        log.warning("unreadable sources in the conversation database: %.200r", text)
        return ()


@dataclass(frozen=True)
class StoredMessage:
    id: int
    conversation_id: int
    role: Role
    content: str
    model_content: str | None
    finish_reason: str | None
    created_at: float
    # For answers: the passages the model was given, numbered as it cited them.
    sources: tuple[StoredSource, ...] = ()
    parent_id: int | None = None
    # This message and its other versions (its parent's children), oldest
    # first; filled in by ConversationStore.messages (the branch shown).
    versions: tuple[int, ...] = ()
    model: str | None = None  # for answers: the model that wrote it
    # For questions: the passages sent with it, whole and in their order.
    sent_sources: tuple[StoredSource, ...] = ()

    def as_earlier_message(self) -> EarlierMessage:
        """For a later turn's history: the question (or answer) and the
        sources sent with it, apart; the turn renders them as first sent."""
        return EarlierMessage(
            self.role, self.content, sources=self.sent_sources, rendered=self.model_content
        )

    def as_chat_message(self) -> ChatMessage:
        """The message as the model saw it."""
        return self.as_earlier_message().as_sent()

    @property
    def version(self) -> int:
        """Which version this is, from 1 (1 when it has no other versions)."""
        return self.versions.index(self.id) + 1 if self.id in self.versions else 1


@dataclass(frozen=True)
class NewMessage:
    """A message of a conversation being imported (ConversationStore.insert_conversation).
    ``parent``: the index of its parent in the same list, None for a first message."""

    role: Role
    content: str
    parent: int | None = None
    model_content: str | None = None
    finish_reason: str | None = None
    created_at: float = 0.0
    sources: Sequence[Passage] = ()
    model: str | None = None
    sent_sources: Sequence[Passage] = ()  # for a question: the passages sent with it


class ConversationStore:
    """Thread-safe: one connection guarded by a lock (writes are tiny)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # No fsync per commit (the draft of a streaming answer is saved
            # every second from the GUI thread): in WAL mode a commit then
            # survives the app being killed, and only a power cut can lose
            # the last moments, never corrupt the file.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(
                f"Footnote cannot open its conversation database at {path}: {exc}. "
                "Check that the folder is writable and the disk is not full.",
                detail=repr(exc),
            ) from exc

    def _migrate(self) -> None:
        try:
            with self._transaction():
                migrate(self._db, MIGRATIONS)
        except NewerSchema as exc:
            raise HistoryError(
                f"The conversation database at {self.path} was written by a newer Footnote "
                f"({exc}). Update Footnote, or move that file away to start fresh."
            ) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def _writing(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._transaction() as db:
                    yield db
            except sqlite3.Error as exc:
                # SQLite's own code, not its wording (extended codes keep
                # the primary one in the low byte).
                full = (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL
                raise HistoryError(
                    f"Could not save {what}: "
                    + (
                        "the disk is full. Free some space and try again."
                        if full
                        else f"{exc}. Your earlier conversations are safe."
                    ),
                    detail=repr(exc),
                ) from exc

    def _reading(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise HistoryError(
                    f"Could not read conversations: {exc}.", detail=repr(exc)
                ) from exc

    # ---------------------------------------------------------------- conversations

    def create_conversation(self, title: str = DEFAULT_TITLE) -> Conversation:
        now = time.time()
        with self._writing("the new conversation") as db:
            cur = db.execute(
                "INSERT INTO conversations(title, created_at, updated_at) VALUES (?, ?, ?)",
                (title, now, now),
            )
        assert cur.lastrowid is not None
        return Conversation(cur.lastrowid, title, now, now)

    def conversations(self) -> list[Conversation]:
        """Most recently active first."""
        rows = self._reading(
            "SELECT id, title, created_at, updated_at FROM conversations "
            "ORDER BY updated_at DESC, id DESC"
        )
        return [Conversation(*row) for row in rows]  # type: ignore[arg-type]

    def get_conversation(self, conversation_id: int) -> Conversation | None:
        rows = self._reading(
            "SELECT id, title, created_at, updated_at FROM conversations WHERE id = ?",
            (conversation_id,),
        )
        return Conversation(*rows[0]) if rows else None  # type: ignore[arg-type]

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        title = " ".join(title.split())[:TITLE_MAX_CHARS] or DEFAULT_TITLE
        with self._writing("the new title") as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def conversation_options(self, conversation_id: int) -> dict[str, Any]:
        """The app's choices for this conversation ({} if none, or unreadable)."""
        rows = self._reading("SELECT options FROM conversations WHERE id = ?", (conversation_id,))
        if not rows or not rows[0][0]:
            return {}
        try:
            options = json.loads(str(rows[0][0]))
        except ValueError:
            log.warning("unreadable options of conversation %s", conversation_id)
            return {}
        return options if isinstance(options, dict) else {}

    def set_conversation_options(self, conversation_id: int, options: Mapping[str, Any]) -> None:
        with self._writing("this conversation's choices") as db:
            db.execute(
                "UPDATE conversations SET options = ? WHERE id = ?",
                (json.dumps(dict(options), ensure_ascii=False), conversation_id),
            )

    def delete_conversation(self, conversation_id: int) -> None:
        with self._writing("the deletion") as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # ---------------------------------------------------------------- messages

    def add_message(
        self,
        conversation_id: int,
        role: Role,
        content: str,
        *,
        model_content: str | None = None,
        finish_reason: str | None = None,
        sources: Sequence[Passage] = (),
        parent_id: int | None = AFTER_HEAD,
        model: str | None = None,
    ) -> StoredMessage:
        """``sources``: for an answer, the passages it was given, in their
        citation order (``Finished.sources``). ``parent_id``: the message it
        follows; by default the end of the branch shown. Another child of a
        message is a new version (a regenerated answer, an edited question).
        The new message becomes the end of the branch shown."""
        now = time.time()
        if model_content == content:
            model_content = None
        sources_json = _sources_json(sources)
        with self._writing("the message") as db:
            if parent_id == AFTER_HEAD:
                parent_id = _head(db, conversation_id)
            cur = db.execute(
                "INSERT INTO messages(conversation_id, role, content, model_content, "
                "finish_reason, created_at, sources, parent_id, model) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    role,
                    content,
                    model_content,
                    finish_reason,
                    now,
                    sources_json,
                    parent_id,
                    model,
                ),
            )
            db.execute(
                "UPDATE conversations SET updated_at = ?, head_id = ? WHERE id = ?",
                (now, cur.lastrowid, conversation_id),
            )
            # The first question names a still-untitled conversation.
            if role == "user":
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ?",
                    (title_from(content), conversation_id, DEFAULT_TITLE),
                )
        assert cur.lastrowid is not None
        return StoredMessage(
            cur.lastrowid,
            conversation_id,
            role,
            content,
            model_content,
            finish_reason,
            now,
            _sources_from_json(sources_json),
            parent_id,
            model=model,
        )

    def update_message(self, message_id: int, content: str, finish_reason: str | None) -> None:
        """Rewrite an answer saved while it was being written. The app saves a
        streaming answer as it goes with finish_reason ``INTERRUPTED``, so an
        answer cut off by a crash or a kill is kept and says so."""
        with self._writing("the answer") as db:
            db.execute(
                "UPDATE messages SET content = ?, finish_reason = ? WHERE id = ?",
                (content, finish_reason, message_id),
            )

    def delete_message(self, message_id: int) -> None:
        """Remove one message (an answer that failed or was stopped before its
        first word). What followed it now follows its parent, and a branch
        that ended with it ends with its parent."""
        with self._writing("the conversation") as db:
            row = db.execute(
                "SELECT conversation_id, parent_id FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return
            conversation_id, parent_id = row
            db.execute(
                "UPDATE messages SET parent_id = ? WHERE parent_id = ?", (parent_id, message_id)
            )
            db.execute(
                "UPDATE conversations SET head_id = ? WHERE id = ? AND head_id = ?",
                (parent_id, conversation_id, message_id),
            )
            db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def set_model_content(self, message_id: int, model_content: str) -> None:
        with self._writing("the message") as db:
            db.execute(
                "UPDATE messages SET model_content = NULLIF(?, content) WHERE id = ?",
                (model_content, message_id),
            )

    def set_sent_sources(self, message_id: int, sources: Sequence[Passage]) -> None:
        """Save the passages a question was sent with (``Finished.sources``),
        whole: the next turn renders the question with them again, byte for
        byte, so llama.cpp reuses the conversation's KV cache."""
        with self._writing("the question's sources") as db:
            # What an earlier version stored in model_content is replaced: the
            # question was sent again (regenerated) with these sources.
            db.execute(
                "UPDATE messages SET sent_sources = ?, model_content = NULL WHERE id = ?",
                (_sources_json(sources, max_chars=None), message_id),
            )

    def set_sources(self, message_id: int, sources: Sequence[Passage]) -> None:
        """Save the sources of an answer added before they were known (the app
        saves a streaming answer as it goes)."""
        with self._writing("the answer's sources") as db:
            db.execute(
                "UPDATE messages SET sources = ? WHERE id = ?", (_sources_json(sources), message_id)
            )

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The branch shown, first message first: what the model is given as
        history and what the window shows. Each message knows its versions."""
        everything = self.all_messages(conversation_id)
        if not everything:
            return []
        rows = self._reading("SELECT head_id FROM conversations WHERE id = ?", (conversation_id,))
        stored_head = rows[0][0] if rows else None
        parents = {m.id: m.parent_id for m in everything}
        children = children_of(parents)
        head = head_of(parents, stored_head if isinstance(stored_head, int) else None)
        by_id = {m.id: m for m in everything}
        if head is None:
            return []
        return [
            dataclasses.replace(by_id[i], versions=versions(children, parents[i]))
            for i in path_to(parents, head)
        ]

    def all_messages(self, conversation_id: int) -> list[StoredMessage]:
        """Every message of every branch, oldest first (for export)."""
        rows = self._reading(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        return [_message_from_row(row) for row in rows]

    def head_id(self, conversation_id: int) -> int | None:
        """The last message of the branch shown (None: no messages)."""
        shown = self.messages(conversation_id)
        return shown[-1].id if shown else None

    def select(self, message_id: int) -> int | None:
        """Show the branch through this message (one of its versions): it
        continues as it was last continued from there. Returns where that
        branch ends (None: no such message)."""
        with self._writing("the version shown") as db:
            row = db.execute(
                "SELECT conversation_id FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return None
            parents = {
                int(i): p
                for i, p in db.execute(
                    "SELECT id, parent_id FROM messages WHERE conversation_id = ?", (row[0],)
                )
            }
            head = latest_leaf(children_of(parents), message_id)
            db.execute("UPDATE conversations SET head_id = ? WHERE id = ?", (head, row[0]))
        return head

    def insert_conversation(
        self,
        title: str,
        messages: Sequence[NewMessage],
        *,
        head: int | None = None,
        created_at: float | None = None,
        updated_at: float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Conversation:
        """Add a whole conversation at once (an import): all of it or nothing.
        ``head``: the index in ``messages`` of the end of the branch shown
        (None: the last message). A parent must come before its children."""
        now = time.time()
        created = now if created_at is None else created_at
        updated = created if updated_at is None else updated_at
        title = " ".join(title.split())[:TITLE_MAX_CHARS] or DEFAULT_TITLE
        with self._writing("the imported conversation") as db:
            cur = db.execute(
                "INSERT INTO conversations(title, created_at, updated_at, options) "
                "VALUES (?, ?, ?, ?)",
                (
                    title,
                    created,
                    updated,
                    json.dumps(dict(options), ensure_ascii=False) if options else None,
                ),
            )
            conversation_id = cur.lastrowid
            ids: list[int] = []
            for index, message in enumerate(messages):
                if message.parent is not None and not 0 <= message.parent < index:
                    raise sqlite3.IntegrityError(
                        f"message {index + 1} follows a message that is not before it"
                    )
                model_content = (
                    None if message.model_content == message.content else message.model_content
                )
                row = db.execute(
                    "INSERT INTO messages(conversation_id, role, content, model_content, "
                    "finish_reason, created_at, sources, parent_id, model, sent_sources) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        conversation_id,
                        message.role,
                        message.content,
                        model_content,
                        message.finish_reason,
                        message.created_at,
                        _sources_json(message.sources),
                        None if message.parent is None else ids[message.parent],
                        message.model,
                        _sources_json(message.sent_sources, max_chars=None),
                    ),
                )
                assert row.lastrowid is not None
                ids.append(row.lastrowid)
            if ids:
                head_id = ids[-1 if head is None else head]
                db.execute(
                    "UPDATE conversations SET head_id = ? WHERE id = ?", (head_id, conversation_id)
                )
        assert conversation_id is not None
        return Conversation(conversation_id, title, created, updated)

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[SearchHit]:
        """Conversations whose title, messages or cited sources hold every
        word of ``query`` (prefixes too), best first (``engine.history_search``)."""
        with self._lock:
            try:
                return search_conversations(self._db, query, limit)
            except sqlite3.Error as exc:
                raise HistoryError(
                    f"Could not search the conversations: {exc}.", detail=repr(exc)
                ) from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, model_content, finish_reason, created_at, "
    "sources, parent_id, model, sent_sources"
)


def _head(db: sqlite3.Connection, conversation_id: int) -> int | None:
    """The end of the branch shown, read inside a write transaction."""
    row = db.execute(
        "SELECT head_id FROM conversations WHERE id = ?", (conversation_id,)
    ).fetchone()
    stored = row[0] if row else None
    if stored is not None:
        exists = db.execute(
            "SELECT 1 FROM messages WHERE id = ? AND conversation_id = ?",
            (stored, conversation_id),
        ).fetchone()
        if exists:
            return int(stored)
    newest = db.execute(
        "SELECT MAX(id) FROM messages WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()
    return None if newest is None or newest[0] is None else int(newest[0])


def _message_from_row(row: tuple[Any, ...]) -> StoredMessage:
    (
        id_,
        conversation_id,
        role,
        content,
        model_content,
        finish_reason,
        created_at,
        sources,
        parent_id,
        model,
        sent_sources,
    ) = row
    return StoredMessage(
        id_,
        conversation_id,
        role,
        content,
        model_content,
        finish_reason,
        created_at,
        _sources_from_json(sources),
        parent_id,
        model=model,
        sent_sources=_sources_from_json(sent_sources),
    )


def title_from(text: str) -> str:
    words = " ".join(text.split())
    if len(words) <= TITLE_MAX_CHARS:
        return words or DEFAULT_TITLE
    return words[: TITLE_MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"
