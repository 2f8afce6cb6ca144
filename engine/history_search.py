"""Search the conversations: titles, messages and the names of cited sources.

The history database keeps two FTS5 tables in step with its rows (migration
6 in ``engine.history``): ``message_search`` (a message's text and the
citations of its sources, one a line) and ``conversation_search`` (titles),
both folding case and diacritics. A query's words must all be found (each
also as the start of a longer word: "budg" finds "budget"); a hit says which
line matched and where in it, so the window can show and highlight that
line and open the conversation at that message. Every version of a message
is searched, those on branches not shown too.

Qt-free; ``ConversationStore.search`` runs it under the store's lock.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from typing import Literal

SEARCH_LIMIT = 50
# The line shown for a hit is cut to about this many characters around its
# first match (a popup row, not the message).
LINE_MAX_CHARS = 160
_CONTEXT_BEFORE_CHARS = 40
_WORD = re.compile(r"\w+")

Where = Literal["title", "message", "sources"]


@dataclass(frozen=True)
class SearchHit:
    conversation_id: int
    title: str  # the conversation's
    message_id: int | None  # None: the title matched
    role: str | None  # "user" or "assistant"; None for a title
    where: Where
    line: str  # the line that matched, cut to about LINE_MAX_CHARS
    spans: tuple[tuple[int, int], ...]  # (start, end) of each match in ``line``
    updated_at: float  # the conversation's


def query_words(query: str) -> list[str]:
    """The words of ``query`` as the index sees them (FTS5 syntax is not
    offered: quotes, AND, * are just characters a person typed)."""
    return _WORD.findall(query)


def fts_query(words: list[str]) -> str:
    """Every word, each also as a prefix: ``"heron"* "budg"*``."""
    return " ".join(f'"{word}"*' for word in words)


def search_conversations(
    db: sqlite3.Connection, query: str, limit: int = SEARCH_LIMIT
) -> list[SearchHit]:
    """Title hits first (newest conversation first), then message hits by
    relevance (FTS5's bm25); at most ``limit`` in all."""
    words = query_words(query)
    if not words or limit <= 0:
        return []
    match = fts_query(words)
    hits: list[SearchHit] = []
    for conversation_id, title, updated_at in db.execute(
        "SELECT c.id, c.title, c.updated_at FROM conversation_search AS s "
        "JOIN conversations AS c ON c.id = s.rowid "
        "WHERE conversation_search MATCH ? ORDER BY c.updated_at DESC LIMIT ?",
        (match, limit),
    ):
        line, spans = matching_line(title, words)
        hits.append(SearchHit(conversation_id, title, None, None, "title", line, spans, updated_at))
    rows = db.execute(
        "SELECT m.id, m.conversation_id, m.role, m.content, s.sources, c.title, c.updated_at "
        "FROM message_search AS s JOIN messages AS m ON m.id = s.rowid "
        "JOIN conversations AS c ON c.id = m.conversation_id "
        "WHERE message_search MATCH ? ORDER BY bm25(message_search), m.id DESC LIMIT ?",
        (match, max(0, limit - len(hits))),
    )
    for message_id, conversation_id, role, content, sources, title, updated_at in rows:
        line, spans = matching_line(content, words)
        where: Where = "message"
        if not spans and sources:
            line, spans = matching_line(sources, words)
            where = "sources"
        hits.append(
            SearchHit(conversation_id, title, message_id, role, where, line, spans, updated_at)
        )
    return hits


def matching_line(text: str, words: list[str]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The line of ``text`` holding the most of ``words`` (the first such),
    cut around its first match, and where the words are in it. A text with
    none of them gives its first line and no spans."""
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [""]
    patterns = [_pattern(word) for word in words]
    best, best_count = lines[0], 0
    for line in lines:
        folded = fold(line)
        count = sum(1 for pattern in patterns if pattern.search(folded))
        if count > best_count:
            best, best_count = line, count
    line = _cut(best, patterns)
    return line, _spans(line, patterns)


def fold(text: str) -> str:
    """Lower case without diacritics, one character for one ("Café" ->
    "cafe"), so positions in the folded text are positions in ``text``."""
    out = []
    for char in text:
        base = unicodedata.normalize("NFKD", char)[:1] or char
        folded = base.casefold()[:1] or base
        out.append(folded)
    return "".join(out)


def _pattern(word: str) -> re.Pattern[str]:
    # a word, or the start of a longer one (as the index matches it)
    return re.compile(r"(?<!\w)" + re.escape(fold(word)) + r"\w*")


def _spans(line: str, patterns: list[re.Pattern[str]]) -> tuple[tuple[int, int], ...]:
    folded = fold(line)
    found = sorted({m.span() for pattern in patterns for m in pattern.finditer(folded)})
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _cut(line: str, patterns: list[re.Pattern[str]]) -> str:
    if len(line) <= LINE_MAX_CHARS:
        return line
    spans = _spans(line, patterns)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - _CONTEXT_BEFORE_CHARS, len(line) - LINE_MAX_CHARS))
    # start and end at a word boundary where one is near
    if start > 0:
        space = line.find(" ", start, first)
        start = space + 1 if space != -1 else start
    end = min(len(line), start + LINE_MAX_CHARS)
    if end < len(line):
        space = line.rfind(" ", start, end)
        end = space if space > first else end
    return ("…" if start > 0 else "") + line[start:end] + ("…" if end < len(line) else "")
