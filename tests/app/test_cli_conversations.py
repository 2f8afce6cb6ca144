"""``python -m app conversations / export / import``, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from app.paths import AppPaths
from engine.context import SourcePassage
from engine.history import ConversationStore
from tests.app.test_cli import run_cli

NOTES = SourcePassage(
    "The travel budget is 12,400 euros.",
    "plan.md › Budget",
    "document",
    {"path": "/home/me/team/plan.md", "heading_path": ["Budget"]},
    "d1",
    0.9,
)


def seed(home: Path) -> int:
    store = ConversationStore(AppPaths.from_environment().ensure().history_db)
    try:
        conv = store.create_conversation()
        question = store.add_message(conv.id, "user", "What is the travel budget?")
        store.add_message(
            conv.id, "assistant", "12,400 euros [1].", sources=[NOTES], model="phi3.gguf"
        )
        store.add_message(
            conv.id, "assistant", "It is 12,400 euros [1].", parent_id=question.id, sources=[NOTES]
        )
        return conv.id
    finally:
        store.close()


def test_export_markdown_and_json_then_import_round_trips(
    footnote_home: Path, tmp_path: Path
) -> None:
    conv = seed(footnote_home)
    listed = run_cli("conversations", home=footnote_home)
    assert listed.returncode == 0 and "What is the travel budget?" in listed.stdout

    md = run_cli("export", "What is the travel", home=footnote_home)
    assert md.returncode == 0, md.stderr
    assert "It is 12,400 euros [^1]." in md.stdout
    assert "[^1]: [plan.md](<file:///home/me/team/plan.md>), Budget" in md.stdout

    file = tmp_path / "out" / "budget.json"
    written = run_cli("export", str(conv), "-o", str(file), home=footnote_home)
    assert written.returncode == 0, written.stderr
    assert f"to {file}" in written.stdout
    first = json.loads(file.read_text(encoding="utf-8"))
    assert [m["role"] for m in first["messages"]] == ["user", "assistant", "assistant"]

    imported = run_cli("import", str(file), home=footnote_home)
    assert imported.returncode == 0, imported.stderr
    assert "(3 messages)" in imported.stdout
    new_id = imported.stdout.rsplit("conversation ", 1)[1].rstrip(".\n")
    again = run_cli("export", new_id, "--format", "json", home=footnote_home)
    second = json.loads(again.stdout)
    first.pop("exported_at"), second.pop("exported_at")
    assert second == first


def test_errors_are_one_readable_line(footnote_home: Path, tmp_path: Path) -> None:
    seed(footnote_home)
    missing = run_cli("export", "Holidays", home=footnote_home)
    assert missing.returncode == 1
    assert missing.stderr.startswith("footnote: error: No conversation has the id or title")
    bad = tmp_path / "notes.json"
    bad.write_text("{not json", encoding="utf-8")
    refused = run_cli("import", str(bad), home=footnote_home)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "notes.json is not a JSON file" in refused.stderr
