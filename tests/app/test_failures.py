"""Ordinary-day failures end in a clear sentence in the banner, with nothing
lost and no crash dialog: a model that fails to load after the previous one
is gone, a conversation database that stops working, a model file that
cannot be deleted, a chat template that refuses a conversation."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Qt

from engine.synthetic_model import write_phi3_gguf
from tests.app.test_main_window import ask, drop_file
from tests.engine.test_typed_errors import PICKY_TEMPLATE, TEMPLATE_COMPLAINT


def test_when_the_new_model_and_the_old_one_both_fail_no_model_is_loaded(
    qtbot, window_with, tiny_model, tmp_path
) -> None:
    first = shutil.copy(tiny_model, tmp_path / "first.gguf")
    window = window_with(Path(first))
    Path(first).unlink()  # moved away while in use: reloading it will fail
    # A valid GGUF header (passes the check before unloading), but an
    # architecture llama.cpp cannot build.
    alien = write_phi3_gguf(tmp_path / "alien.gguf", architecture="footnotenet")
    drop_file(window, alien)
    qtbot.waitUntil(lambda: "footnotenet" in window.banner.text(), timeout=20_000)

    message = window.banner.text()
    assert "Still using" not in message
    assert "no model is loaded now" in message and "File → Open Model…" in message
    assert window.engine.model is None
    assert window.model_label.text() == "No model loaded"
    assert window.pages.currentWidget() is window.welcome

    window.send("Are you there?")  # refused, with the way out; the question is kept
    assert "Open a model first" in window.banner.text()
    assert window.composer.text() == "Are you there?"
    assert window.chat.bubbles() == []
    assert not window.composer.generating


def test_a_broken_conversation_database_is_reported_not_crashed_on(
    qtbot, window_with, tiny_model, monkeypatch
) -> None:
    from tests.app.conftest import wait_for_answer

    window = window_with(tiny_model)
    ask(qtbot, window, "A question worth keeping")
    wait_for_answer(qtbot, window)
    conversation = window.conversation_id
    assert conversation is not None
    window.store.close()  # from here on every read and write fails (HistoryError)

    item = window.conversations.item(0)
    item.setText("Renamed")  # an inline edit: rename, then read the title back
    assert "Could not" in window.banner.text()
    assert item.text() == "A question worth keeping"  # the list still tells the truth

    window.banner.hide()
    window.new_conversation()
    assert "Could not" in window.banner.text()

    window.banner.hide()
    monkeypatch.setattr(window, "confirm", lambda title, text: True)
    window.conversations.setCurrentRow(0)
    qtbot.keyClick(window.conversations, Qt.Key.Key_Delete)
    assert "Could not" in window.banner.text()
    assert window.conversations.count() == 1  # nothing vanished from view
    assert [b.role for b in window.chat.bubbles()] == ["user", "assistant"]

    window.banner.hide()
    window.conversations_controller.refresh()
    assert "Could not read conversations" in window.banner.text()
    assert window.conversations.count() == 1


def test_a_model_file_that_cannot_be_deleted_says_why(qtbot, open_window, paths) -> None:
    stuck = paths.models / "stuck.gguf"
    stuck.mkdir()  # a folder named like a model: the OS refuses to unlink it
    window = open_window()
    window.confirm = lambda title, text: True  # type: ignore[method-assign]
    window.delete_model_file(str(stuck))
    assert "stuck.gguf could not be deleted" in window.banner.text()
    assert stuck.exists()


def test_a_chat_template_that_refuses_the_conversation_is_explained(
    qtbot, window_with, tmp_path
) -> None:
    from tests.app.conftest import wait_for_answer

    picky = write_phi3_gguf(tmp_path / "picky.gguf", chat_template=PICKY_TEMPLATE)
    window = window_with(picky)
    ask(qtbot, window, "a forbidden question")
    wait_for_answer(qtbot, window)
    message = window.banner.text()
    assert "chat template cannot format this conversation" in message
    assert TEMPLATE_COMPLAINT not in message  # behind "Copy details"
    assert [b.role for b in window.chat.bubbles()] == ["user"]  # no error as an answer
    assert window.engine.model is not None  # the model stays loaded and usable
