"""Regenerate, edit and resend, and switching versions, in the real window
with the tiny scripted Phi-3 on real llama.cpp."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt

from app.main_window import MainWindow
from engine.events import Finished
from engine.model import LocalModel
from engine.synthetic_model import SCRIPTED_ANSWER
from tests.app.conftest import wait_for_answer


def ask(qtbot, window: MainWindow, text: str) -> None:
    window.send(text)
    wait_for_answer(qtbot, window)


def finished_of(qtbot, window: MainWindow, act) -> Finished:
    """Do ``act`` and return the Finished event of the turn it starts."""
    seen: list[Finished] = []

    def keep(_turn: int, event: object) -> None:
        if isinstance(event, Finished):
            seen.append(event)

    window.engine.turn_event.connect(keep)
    try:
        act()
        qtbot.waitUntil(lambda: bool(seen), timeout=30_000)
        wait_for_answer(qtbot, window)
    finally:
        window.engine.turn_event.disconnect(keep)
    return seen[-1]


def test_regenerate_keeps_the_earlier_answer_and_reads_almost_nothing_again(
    qtbot, window_with, tiny_model
) -> None:
    window = window_with(tiny_model)
    ask(qtbot, window, "What is Footnote?")
    conversation = window.conversation_id
    assert conversation is not None
    user, answer = window.chat.bubbles()
    assert answer.regenerate_button.isVisible() and not answer.previous_button.isVisible()
    assert user.edit_button.isVisible() and not answer.edit_button.isVisible()
    first_id = answer.message_id

    end = finished_of(
        qtbot, window, lambda: qtbot.mouseClick(answer.regenerate_button, Qt.MouseButton.LeftButton)
    )
    # The same prompt as before: llama.cpp's cache holds all of it.
    assert end.stats.evaluated_prompt_tokens <= 2 < end.stats.reused_prompt_tokens

    stored = window.store.messages(conversation)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].versions == (first_id, stored[1].id) and stored[1].version == 2
    assert stored[1].model == tiny_model.name
    user, answer = window.chat.bubbles()
    assert answer.text == SCRIPTED_ANSWER
    assert answer.version_label.text() == "2/2"
    assert answer.previous_button.isEnabled() and not answer.next_button.isEnabled()

    # ‹ shows the first version, › the second again.
    qtbot.mouseClick(answer.previous_button, Qt.MouseButton.LeftButton)
    [_, answer] = window.chat.bubbles()
    assert (answer.message_id, answer.version_label.text()) == (first_id, "1/2")
    assert [m.id for m in window.store.messages(conversation)][-1] == first_id
    qtbot.mouseClick(answer.next_button, Qt.MouseButton.LeftButton)
    assert window.chat.bubbles()[-1].version_label.text() == "2/2"


def test_edit_and_resend_branches_and_the_old_branch_stays_reachable(
    qtbot, window_with, tiny_model
) -> None:
    window = window_with(tiny_model)
    ask(qtbot, window, "First question")
    ask(qtbot, window, "Second question")
    ask(qtbot, window, "Third question")
    conversation = window.conversation_id
    assert conversation is not None
    second = window.chat.bubbles()[2]
    assert second.text == "Second question"

    qtbot.mouseClick(second.edit_button, Qt.MouseButton.LeftButton)
    assert second.editor is not None and second.editor.toPlainText() == "Second question"
    second.editor.selectAll()
    qtbot.keyClicks(second.editor, "Second question, edited")
    end = finished_of(qtbot, window, lambda: qtbot.keyClick(second.editor, Qt.Key.Key_Return))
    # Only the edited question is read: the first exchange is still cached.
    first_exchange = window.store.messages(conversation)[:2]
    assert end.stats.reused_prompt_tokens > 0
    assert end.stats.evaluated_prompt_tokens < end.stats.prompt_tokens - 10

    bubbles = window.chat.bubbles()
    assert [b.text for b in bubbles[:3]] == [
        "First question",
        SCRIPTED_ANSWER,
        "Second question, edited",
    ]
    assert len(bubbles) == 4
    assert bubbles[2].version_label.text() == "2/2"
    assert [m.id for m in window.store.messages(conversation)[:2]] == [m.id for m in first_exchange]

    # The earlier branch, with the rest of it.
    qtbot.mouseClick(bubbles[2].previous_button, Qt.MouseButton.LeftButton)
    assert [b.text for b in window.chat.bubbles()][2::2] == ["Second question", "Third question"]
    assert window.chat.bubbles()[2].version_label.text() == "1/2"
    # A new question now continues that branch.
    ask(qtbot, window, "Fourth question")
    texts = [m.content for m in window.store.messages(conversation) if m.role == "user"]
    assert texts == ["First question", "Second question", "Third question", "Fourth question"]


def test_escape_cancels_an_edit_and_nothing_is_sent(qtbot, window_with, tiny_model) -> None:
    window = window_with(tiny_model)
    ask(qtbot, window, "A question")
    user = window.chat.bubbles()[0]
    user.start_editing()
    assert user.editor is not None
    qtbot.keyClick(user.editor, Qt.Key.Key_Escape)
    assert user.editor is None and user.body.isVisible()
    assert not window.composer.generating
    assert len(window.store.messages(window.conversation_id)) == 2  # type: ignore[arg-type]


def test_versions_survive_a_restart(qtbot, window_with, open_window, tiny_model) -> None:
    from tests.app.conftest import close

    window = window_with(tiny_model)
    ask(qtbot, window, "Keep both")
    answer = window.chat.bubbles()[1]
    qtbot.mouseClick(answer.regenerate_button, Qt.MouseButton.LeftButton)
    wait_for_answer(qtbot, window)
    close(window)
    again = open_window()
    [_, answer] = again.chat.bubbles()
    assert answer.version_label.text() == "2/2" and answer.previous_button.isVisible()


def test_file_export_and_import_in_the_window(qtbot, window_with, tiny_model, tmp_path) -> None:
    window = window_with(tiny_model)
    ask(qtbot, window, "Export me")
    answer = window.chat.bubbles()[1]
    qtbot.mouseClick(answer.regenerate_button, Qt.MouseButton.LeftButton)
    wait_for_answer(qtbot, window)
    exported = window.conversation_id

    md = window.conversation_files.export_current(tmp_path / "chat.md")
    assert md is not None and md.read_text(encoding="utf-8").startswith("# Export me\n")
    assert window.banner.isVisible() and "Exported “Export me”" in window.banner.text()
    js = window.conversation_files.export_current(tmp_path / "chat.json")
    assert js is not None

    imported = window.conversation_files.import_file(js)
    assert imported is not None and imported != exported
    assert window.conversation_id == imported  # shown, and selected in the list
    assert window.conversations.currentItem().text() == "Export me"
    [_, answer] = window.chat.bubbles()
    assert answer.version_label.text() == "2/2"

    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    assert window.conversation_files.import_file(tmp_path / "bad.json") is None
    assert "is not a conversation exported by Footnote" in window.banner.text()


def test_each_version_keeps_its_sources_and_a_regenerate_searches_nothing(
    qtbot, window_with, tiny_model
) -> None:

    from engine.context import ContextProgress, ContextRequest, SourcePassage

    searched: list[str] = []

    def documents(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        searched.append(request.question)
        yield from ()
        return [
            SourcePassage(
                "The travel budget is 12,400 euros.",
                "plan.md › Budget",
                "document",
                {"path": "/team/plan.md", "heading_path": ["Budget"]},
                "b1",
                0.9,
            )
        ]

    window = window_with(tiny_model)
    window.chat_controller.context_source = documents
    ask(qtbot, window, "What is the travel budget?")
    first = window.chat.bubbles()[1]
    assert first.sources_panel is not None
    end = finished_of(qtbot, window, first.regenerate_button.click)
    assert searched == ["What is the travel budget?"]  # asked once, not again
    assert end.stats.evaluated_prompt_tokens <= 2
    assert [s.citation for s in end.sources] == ["plan.md › Budget"]

    conversation = window.conversation_id
    assert conversation is not None
    versions = [m for m in window.store.all_messages(conversation) if m.role == "assistant"]
    assert [[s.citation for s in v.sources] for v in versions] == [["plan.md › Budget"]] * 2
    window.chat.bubbles()[1].previous_button.click()
    shown = window.chat.bubbles()[1]
    assert shown.version_label.text() == "1/2" and shown.sources_panel is not None


def test_a_regenerate_stopped_before_its_first_word_shows_the_answer_again(
    qtbot, window_with, tiny_model, monkeypatch
) -> None:
    window = window_with(tiny_model)
    ask(qtbot, window, "Keep this answer")
    conversation = window.conversation_id
    assert conversation is not None
    answer = window.chat.bubbles()[1]
    first_id = answer.message_id
    # The engine thread is held at the start of the turn until Stop has been
    # pressed, so Stop lands before it writes anything (the tiny model writes
    # its whole answer in milliseconds otherwise).
    stopped = threading.Event()
    start_turn = LocalModel.fit_threads_to_load

    def held(model: LocalModel) -> None:
        stopped.wait(10)
        start_turn(model)

    monkeypatch.setattr(LocalModel, "fit_threads_to_load", held)
    answer.regenerate_button.click()
    window.stop()
    stopped.set()
    wait_for_answer(qtbot, window)
    [_, shown] = window.chat.bubbles()
    assert (shown.message_id, shown.text) == (first_id, SCRIPTED_ANSWER)
    assert not shown.version_label.isVisible() and shown.regenerate_button.isEnabled()
    assert [m.id for m in window.store.messages(conversation)][-1] == first_id
    assert len(window.store.all_messages(conversation)) == 2  # no empty version left
