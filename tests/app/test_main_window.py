from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.main_window import MainWindow
from engine.events import Token
from engine.hardware import detect_build
from engine.synthetic_model import SCRIPTED_ANSWER
from tests.app.conftest import close, wait_for_answer, wait_for_model


def ask(qtbot, window: MainWindow, text: str) -> None:
    window.composer.edit.setFocus()
    qtbot.keyClicks(window.composer.edit, text)
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)


def ask_and_wait_for_text(qtbot, window: MainWindow, text: str) -> None:
    """Ask, and return once part of the answer is on screen (still being written)."""
    with qtbot.waitSignal(window.chat.streaming_rendered, timeout=20_000):
        ask(qtbot, window, text)


def drop_file(window: MainWindow, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(100, 100),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)


def test_first_run_shows_the_open_model_screen(open_window) -> None:
    window = open_window()
    assert window.pages.currentWidget() is window.welcome
    assert window.welcome.open_button.text() == "Open a GGUF file…"
    assert window.model_label.text() == "No model loaded"


def test_question_gets_a_streamed_rendered_answer(qtbot, window_with, tiny_model) -> None:
    window = window_with(tiny_model)
    assert window.pages.currentWidget() is window.chat_page
    assert "Footnote tiny Phi-3" in window.model_label.text()
    assert window.backend_label.text().startswith(detect_build().backend)  # CPU in CI

    ask(qtbot, window, "What is Footnote?")
    assert window.composer.text() == ""  # sent, and the box cleared
    wait_for_answer(qtbot, window)

    user, answer = window.chat.bubbles()
    assert (user.role, user.text) == ("user", "What is Footnote?")
    assert (answer.role, answer.text) == ("assistant", SCRIPTED_ANSWER)
    # Rendered as Markdown: bold, list, highlighted code, not raw asterisks.
    html = answer.body.text()
    assert "<strong>Phi-3</strong>" in html and "<li>" in html and "<pre" in html
    assert "tok/s" in window.speed_label.text()
    assert window.composer.button.text() == "Send"


def test_shift_enter_adds_a_line_instead_of_sending(qtbot, window_with, tiny_model) -> None:
    window = window_with(tiny_model)
    qtbot.keyClicks(window.composer.edit, "line one")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.composer.edit, "line two")
    assert window.composer.text() == "line one\nline two"
    assert window.chat.bubbles() == []


def test_stop_mid_stream(qtbot, window_with, looping_model) -> None:
    window = window_with(looping_model)
    ask_and_wait_for_text(qtbot, window, "Tell me everything.")
    assert window.composer.button.text() == "Stop"
    streamed = window.chat.streaming_text
    assert streamed  # text is visible while the answer is being written
    qtbot.mouseClick(window.composer.button, Qt.MouseButton.LeftButton)
    assert window.activity.text() == "Stopping…"
    turn = window.chat_controller._turn
    if turn is not None:  # a token still on its way from the engine thread does not undo it
        window.engine.turn_event.emit(turn.id, Token(" "))
        assert window.activity.text() == "Stopping…"
    wait_for_answer(qtbot, window)

    answer = window.chat.bubbles()[-1]
    assert answer.footer.text().startswith("Stopped")
    # Stopped long before the 4096-token context could fill.
    assert len(answer.text) < 4096 * 4
    assert answer.text.startswith(streamed.strip()[:20])
    stored = window.store.messages(window.conversation_id)[-1]
    assert (stored.role, stored.finish_reason) == ("assistant", "cancelled")
    assert window.composer.button.text() == "Send"


def test_the_answer_being_written_is_saved_and_follows_the_user_back(
    qtbot, window_with, open_window, looping_model
) -> None:
    from engine.history import INTERRUPTED

    window = window_with(looping_model)
    ask_and_wait_for_text(qtbot, window, "Tell me everything.")
    asked_in = window.conversation_id
    assert asked_in is not None
    # Saved from the first token on, marked as not finished (a kill keeps it).
    draft = window.store.messages(asked_in)[-1]
    assert (draft.role, draft.finish_reason) == ("assistant", INTERRUPTED) and draft.content

    # Look elsewhere while it writes, then come back: the text so far is there.
    window.new_conversation()
    assert window.chat.bubbles() == []
    # More of the answer arrives while the user looks elsewhere.
    with qtbot.waitSignal(
        window.engine.turn_event,
        check_params_cb=lambda _turn, event: isinstance(event, Token) and bool(event.text),
        timeout=10_000,
    ):
        pass
    window.show_conversation(asked_in)
    shown = window.chat.streaming_text
    assert shown.startswith(draft.content.strip()[:20]) and len(shown) > len(draft.content)

    qtbot.mouseClick(window.composer.button, Qt.MouseButton.LeftButton)
    wait_for_answer(qtbot, window)
    answers = [m for m in window.store.messages(asked_in) if m.role == "assistant"]
    assert [a.finish_reason for a in answers] == ["cancelled"]  # the draft became the answer
    assert answers[0].content.startswith(shown.strip()[:20])
    assert [b.role for b in window.chat.bubbles()] == ["user", "assistant"]

    # An answer the app never finished (killed) says so when read back.
    window.store.update_message(answers[0].id, answers[0].content, INTERRUPTED)
    close(window)
    again = open_window()
    assert again.chat.bubbles()[-1].footer.text().startswith("Interrupted")


def test_deleting_the_conversation_being_answered_stops_cleanly(
    qtbot, window_with, looping_model, monkeypatch
) -> None:
    window = window_with(looping_model)
    ask_and_wait_for_text(qtbot, window, "Tell me everything.")
    monkeypatch.setattr(window, "confirm", lambda title, text: True)
    window.delete_conversation(window.conversation_id)
    wait_for_answer(qtbot, window)
    assert window.store.conversations() == []
    assert window.chat.bubbles() == []  # the deleted chat is gone from view too
    assert not window.banner.isVisible()  # nothing failed to save into the deleted chat
    ask(qtbot, window, "Still there?")  # and the app goes on
    qtbot.waitUntil(lambda: len(window.chat.bubbles()) == 2, timeout=10_000)


def test_conversation_survives_a_restart(qtbot, open_window, configure, tiny_model) -> None:
    configure(model_path=str(tiny_model))
    first = open_window()
    wait_for_model(qtbot, first)
    ask(qtbot, first, "Remember this question")
    wait_for_answer(qtbot, first)
    close(first)

    second = open_window()
    assert second.conversations.count() == 1
    assert second.conversations.item(0).text() == "Remember this question"
    texts = [(b.role, b.text) for b in second.chat.bubbles()]
    assert texts == [("user", "Remember this question"), ("assistant", SCRIPTED_ANSWER)]


def test_dropping_a_gguf_opens_it(qtbot, open_window, tiny_model) -> None:
    window = open_window()
    assert window.pages.currentWidget() is window.welcome
    drop_file(window, tiny_model)
    wait_for_model(qtbot, window)
    assert window.pages.currentWidget() is window.chat_page
    assert window.settings.model_path == str(tiny_model)


def test_bad_model_file_gives_a_clear_message_and_keeps_the_app_usable(
    qtbot, window_with, tiny_model, tmp_path
) -> None:
    window = window_with(tiny_model)
    fake = tmp_path / "notes.gguf"
    fake.write_text("not a model")
    drop_file(window, fake)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)

    message = window.banner.text()
    assert "not a GGUF model file" in message
    assert "Still using Footnote tiny Phi-3" in message
    assert "Traceback" not in message
    assert window.settings.model_path == str(tiny_model)
    ask(qtbot, window, "Still there?")
    wait_for_answer(qtbot, window)
    assert window.chat.bubbles()[-1].text == SCRIPTED_ANSWER


def test_a_model_that_loads_takes_a_failed_loads_message_away(
    qtbot, window_with, tiny_model, tmp_path
) -> None:
    window = window_with(tiny_model)
    fake = tmp_path / "notes.gguf"
    fake.write_text("not a model")
    drop_file(window, fake)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)
    window.open_model(str(tiny_model))
    qtbot.waitUntil(lambda: window.models_controller.loading_path is None, timeout=20_000)
    assert not window.banner.isVisible()


def test_missing_configured_model_returns_to_the_open_screen(
    qtbot, open_window, configure, tmp_path
) -> None:
    configure(model_path=str(tmp_path / "moved-away.gguf"))
    window = open_window()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)
    assert "No model file at" in window.banner.text()
    assert window.pages.currentWidget() is window.welcome


def test_message_too_long_for_the_context_is_explained_not_answered(
    qtbot, open_window, configure, tiny_model
) -> None:
    configure(model_path=str(tiny_model), context_tokens=512)
    window = open_window()
    wait_for_model(qtbot, window)
    window.composer.set_text("hello world " * 400)
    qtbot.mouseClick(window.composer.button, Qt.MouseButton.LeftButton)
    wait_for_answer(qtbot, window)
    assert "too long" in window.banner.text()
    # The question is kept; no error text masquerades as an answer.
    assert [b.role for b in window.chat.bubbles()] == ["user"]


def test_rename_and_delete_conversations(qtbot, window_with, tiny_model, monkeypatch) -> None:
    window = window_with(tiny_model)
    ask(qtbot, window, "First topic")
    wait_for_answer(qtbot, window)
    qtbot.mouseClick(window.new_chat_button, Qt.MouseButton.LeftButton)
    ask(qtbot, window, "Second topic")
    wait_for_answer(qtbot, window)
    assert [window.conversations.item(i).text() for i in range(2)] == [
        "Second topic",
        "First topic",
    ]

    item = window.conversations.item(1)
    first_id = item.data(Qt.ItemDataRole.UserRole)
    item.setText("  Renamed  ")  # what an inline edit does
    assert window.store.get_conversation(first_id).title == "Renamed"
    assert window.conversations.item(1).text() == "Renamed"

    monkeypatch.setattr(window, "confirm", lambda title, text: True)
    window.conversations.setCurrentRow(0)
    qtbot.keyClick(window.conversations, Qt.Key.Key_Delete)
    assert [window.conversations.item(i).text() for i in range(window.conversations.count())] == [
        "Renamed"
    ]
    assert [b.text for b in window.chat.bubbles()][0] == "First topic"


def test_window_size_is_restored(qtbot, open_window) -> None:
    first = open_window()
    # (the offscreen screen is 800x600; restoreGeometry keeps windows on screen)
    first.resize(720, 520)
    qtbot.waitUntil(lambda: first.width() == 720)
    close(first)
    second = open_window()
    assert (second.width(), second.height()) == (720, 520)


def test_settings_dialog_changes_are_applied_and_persisted(qtbot, open_window, paths) -> None:
    from app.settings import load_settings
    from app.widgets.settings_dialog import SettingsDialog

    window = open_window()
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.context.setValue(2048)
    dialog.temperature.setValue(0.2)
    dialog.system_prompt.setPlainText("Answer in French.")
    dialog.apply_to(window.settings)
    window.close()
    saved = load_settings(paths.settings_file).settings
    assert (saved.context_tokens, saved.temperature, saved.system_prompt) == (
        2048,
        0.2,
        "Answer in French.",
    )


def test_gpu_layers_setting_reaches_the_engine(qtbot, window_with, tiny_model, monkeypatch) -> None:
    from app.widgets.settings_dialog import SettingsDialog
    from engine.devices import ComputeDevice

    window = window_with(tiny_model)
    without_gpu = SettingsDialog(window.settings, window, gpus=())
    qtbot.addWidget(without_gpu)
    assert not without_gpu.gpu_layers.isEnabled()  # and its tooltip says how to get a GPU build
    assert "GPU builds" in without_gpu.gpu_layers.toolTip()

    # No GPU here: stand in for what llama.cpp reports on a machine with one.
    gpu = ComputeDevice("CUDA0", "Test GPU", "CUDA", "gpu", 6 * 10**9, 8 * 10**9)
    window.engine.gpus = (gpu,)
    loads = []
    monkeypatch.setattr(window.engine, "load_model", lambda path, options: loads.append(options))

    def choose_cpu_only(dialog: SettingsDialog) -> int:
        assert dialog.gpu_layers.isEnabled() and "Test GPU (CUDA)" in dialog.gpu_layers.toolTip()
        assert dialog.gpu_layers.text() == "Automatic (what fits in free GPU memory)"
        dialog.gpu_layers.setValue(0)
        return SettingsDialog.DialogCode.Accepted

    monkeypatch.setattr(SettingsDialog, "exec", choose_cpu_only)
    window.open_settings()
    assert window.settings.gpu_layers == 0
    assert [options.gpu_layers for options in loads] == [0]  # reloaded with the new choice
