from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import pytest

from engine.context import SourcePassage
from engine.export import (
    ConversationFileError,
    ConversationNotFound,
    conversation_to_dict,
    conversation_to_json,
    conversation_to_markdown,
    find_conversation,
    import_conversation,
    read_conversation_file,
    suggested_file_name,
)
from engine.history import ConversationStore

NOTES = SourcePassage(
    "Footnote keeps every file on this computer.",
    "notes.md › Privacy",
    "document",
    {"path": "/home/me/my notes.md", "heading_path": ["Setup", "Privacy"]},
    "d1",
    0.8,
)
REPORT = SourcePassage(
    "Revenue grew 12%.", "report.pdf, p. 3", "document", {"path": "/srv/report.pdf", "page": 3}
)
PAGE = SourcePassage(
    "Phi-3 is a small model.",
    "Phi-3 — example.org",
    "web",
    {"url": "https://example.org/phi3", "title": "Phi-3 [technical report]"},
    "w1",
    0.6,
)
NOW = _dt.datetime(2026, 12, 6, 7, 0, tzinfo=_dt.UTC)


@pytest.fixture
def store(tmp_path: Path):
    s = ConversationStore(tmp_path / "history.sqlite3")
    yield s
    s.close()


def branched(store: ConversationStore) -> int:
    """A conversation with a regenerated answer and an edited question."""
    conv = store.create_conversation()
    q1 = store.add_message(conv.id, "user", "Is it private?")
    store.set_model_content(q1.id, "Sources…\n\nQuestion: Is it private?")
    store.add_message(
        conv.id,
        "assistant",
        "Yes [1]. Revenue grew [2, 3]. `a[1]` stays code.",
        sources=[NOTES, REPORT, PAGE],
        finish_reason="stop",
        model="phi-3-mini-q4.gguf",
    )
    store.add_message(
        conv.id, "assistant", "It is [1].", parent_id=q1.id, sources=[NOTES], model="phi-4.gguf"
    )
    q2 = store.add_message(conv.id, "user", "And the web?")
    store.set_sent_sources(q2.id, [PAGE])
    store.add_message(conv.id, "assistant", "See [1].", sources=[PAGE], finish_reason="cancelled")
    store.add_message(conv.id, "user", "And the web, really?", parent_id=q2.parent_id)
    store.set_conversation_options(conv.id, {"web": "auto", "collections": ["team"]})
    return conv.id


def test_markdown_keeps_each_citation_as_a_footnote_with_its_location(
    store: ConversationStore,
) -> None:
    conv = branched(store)
    first_answer = store.all_messages(conv)[1]
    store.select(first_answer.id)
    md = conversation_to_markdown(store, conv, now=NOW)
    assert md.startswith("# Is it private?\n")
    assert "model phi-3-mini-q4.gguf" in md
    assert "## You\n\nIs it private?" in md
    assert "Yes [^1]. Revenue grew [^2][^3]. `a[1]` stays code." in md
    assert "[^1]: [my notes.md](<file:///home/me/my%20notes.md>), Setup › Privacy" in md
    assert "[^2]: [report.pdf](<file:///srv/report.pdf>), p. 3" in md
    assert "[^3]: [Phi-3 \\[technical report\\]](<https://example.org/phi3>)" in md
    assert "*version 1 of 2; the others are in the JSON export*" in md
    # The branch shown ends with the first answer.
    assert "And the web" not in md


def test_markdown_numbers_footnotes_across_answers_and_names_uncited_sources(
    store: ConversationStore,
) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "q1")
    store.add_message(conv.id, "assistant", "From [1].", sources=[NOTES, REPORT])
    store.add_message(conv.id, "user", "q2")
    store.add_message(conv.id, "assistant", "Also [1].", sources=[PAGE])
    md = conversation_to_markdown(store, conv.id, now=NOW)
    assert "From [^1].\n\n*Also given, not cited:* [^2]" in md
    assert "Also [^3]." in md
    assert md.count("\n[^") == 3


def test_json_has_every_version_its_sources_and_models(store: ConversationStore) -> None:
    conv = branched(store)
    data = conversation_to_dict(store, conv, now=NOW)
    assert data["format"] == "footnote-conversation" and data["version"] == 1
    assert data["model"] == "phi-4.gguf"
    messages = data["messages"]
    assert [(m["id"], m["parent"], m["role"]) for m in messages] == [
        (1, None, "user"),
        (2, 1, "assistant"),
        (3, 1, "assistant"),
        (4, 3, "user"),
        (5, 4, "assistant"),
        (6, 3, "user"),
    ]
    assert [(m["version"], m["versions"]) for m in messages[1:3]] == [(1, 2), (2, 2)]
    assert messages[0]["sent_as"].endswith("Question: Is it private?")
    assert messages[1]["sources"][2]["location"]["url"] == "https://example.org/phi3"
    assert messages[1]["model"] == "phi-3-mini-q4.gguf"
    assert messages[4]["finish_reason"] == "cancelled"
    assert messages[3]["sent_sources"][0]["text"] == PAGE.text
    assert data["current"] == 6
    assert data["options"] == {"web": "auto", "collections": ["team"]}


def test_export_import_export_gives_the_same_json(store: ConversationStore, tmp_path: Path) -> None:
    conv = branched(store)
    first = conversation_to_json(store, conv)
    file = tmp_path / "chat.json"
    file.write_text(first, encoding="utf-8")
    imported = import_conversation(store, read_conversation_file(file))
    assert imported.id != conv
    again = conversation_to_json(store, imported.id)
    # Only when it was exported differs.
    strip = lambda text: {k: v for k, v in json.loads(text).items() if k != "exported_at"}  # noqa: E731
    assert strip(again) == strip(first)
    assert [m.content for m in store.messages(imported.id)] == [
        m.content for m in store.messages(conv)
    ]
    # What the model will read again after the import is what it read before.
    assert [m.as_chat_message() for m in store.all_messages(imported.id)] == [
        m.as_chat_message() for m in store.all_messages(conv)
    ]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json", "is not a JSON file"),
        ("[1, 2]", "is not a conversation exported by Footnote"),
        ('{"format": "other"}', "is not a conversation exported by Footnote"),
        ('{"format": "footnote-conversation", "version": 99}', "newer Footnote"),
        (
            '{"format": "footnote-conversation", "version": 1, "messages": '
            '[{"id": 1, "parent": 2, "role": "user", "content": "q"}]}',
            "follows a message that is not before it",
        ),
        (
            '{"format": "footnote-conversation", "version": 1, "messages": [{"id": 1}]}',
            "has no role",
        ),
    ],
)
def test_a_file_that_is_not_a_conversation_is_refused_and_nothing_is_added(
    store: ConversationStore, tmp_path: Path, content: str, says: str
) -> None:
    file = tmp_path / "x.json"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(ConversationFileError, match=says):
        import_conversation(store, read_conversation_file(file))
    assert store.conversations() == []


def test_conversations_are_found_by_id_or_title(store: ConversationStore) -> None:
    a = store.create_conversation("Trip planning")
    b = store.create_conversation("Budget 2025")
    assert find_conversation(store, str(a.id)) == a
    assert find_conversation(store, "budget 2025") == b
    assert find_conversation(store, "Trip") == a
    with pytest.raises(ConversationNotFound, match="No conversation has the id or title"):
        find_conversation(store, "Holidays")


def test_suggested_file_names_are_safe() -> None:
    assert suggested_file_name("What is 2/3 of: 9?", "md") == "What is 23 of 9.md"
    assert suggested_file_name("///", "json") == "conversation.json"
