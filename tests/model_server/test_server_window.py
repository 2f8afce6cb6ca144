"""The real window with answers from the real llama.cpp server: Settings →
"Use a model server", where answers are computed always in view, a turn, the
ledger, the key never in the settings file, and an answer a dying server
cut off kept with its reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from app.main_window import MainWindow
from app.settings import Settings
from app.widgets.settings_dialog import SettingsDialog
from app.wiring.grounding import ledger_path
from engine.synthetic_model import SCRIPTED_ANSWER
from retrieval.web.ledger import Ledger
from tests.app.conftest import (  # the window's fixtures
    configure,
    no_modal_dialogs,
    open_window,
    paths,
    wait_for_answer,
    wait_for_model,
)
from tests.app.test_main_window import ask, ask_and_wait_for_text
from tests.llama_server import RunningServer

__all__ = ["configure", "no_modal_dialogs", "open_window", "paths"]


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """As on a headless Linux box (and this test machine): no keyring backend."""
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


def choose_server(url: str, model: str, key: str = "") -> Callable[[SettingsDialog], int]:
    def fill_in(dialog: SettingsDialog) -> int:
        assert not dialog.server_url.isEnabled()  # until "Use a model server" is ticked
        dialog.use_server.setChecked(True)
        dialog.server_url.setText(url)
        dialog.server_model.setText(model)
        dialog.server_key.setText(key)
        return SettingsDialog.DialogCode.Accepted

    return fill_in


@pytest.mark.usefixtures("no_keyring")
def test_settings_switch_to_a_server_and_a_turn_is_answered_there(
    qtbot,
    llama_server: RunningServer,
    tiny_model: Path,
    configure: Callable[..., Settings],
    open_window: Callable[[], MainWindow],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(model_path=str(tiny_model))
    window = open_window()
    wait_for_model(qtbot, window)
    assert "on a model server" not in window.model_label.text()

    url, name = llama_server.url, llama_server.alias
    monkeypatch.setattr(SettingsDialog, "exec", choose_server(url, name, key="sk-typed"))
    with qtbot.waitSignal(window.engine.model_loaded, timeout=20_000):
        window.open_settings()
    # Where answers are computed, always in view.
    assert window.model_label.text() == f"{name} · on a model server"
    assert window.backend_label.text().startswith(f"Answers computed on {url} ({name})")
    # No keyring here: said in one sentence, and the key is not in the settings file.
    assert "no system keyring" in window.banner.text()
    saved = window.paths.settings_file.read_text()
    assert "sk-typed" not in saved and url in saved

    ask(qtbot, window, "What is Footnote?")
    wait_for_answer(qtbot, window)
    _user, answer = window.chat.bubbles()
    assert (answer.role, answer.text) == ("assistant", SCRIPTED_ANSWER)
    entries = Ledger(ledger_path(window.paths.data)).entries()
    assert entries and all(e.kind == "model" and e.provider == url for e in entries)
    assert f"{name}: the conversation and the question" in entries[0].text


def test_the_server_chosen_last_time_is_used_at_start(
    qtbot,
    llama_server: RunningServer,
    configure: Callable[..., Settings],
    open_window: Callable[[], MainWindow],
) -> None:
    configure(
        use_model_server=True,
        model_server_url=llama_server.url,
        model_server_model=llama_server.alias,
    )
    window = open_window()
    wait_for_model(qtbot, window)
    assert window.model_label.text() == f"{llama_server.alias} · on a model server"
    assert window.settings.model_path == ""  # a server is no model file


def test_an_answer_a_dying_server_cut_off_is_kept_with_the_reason(
    qtbot,
    looping_server: RunningServer,
    configure: Callable[..., Settings],
    open_window: Callable[[], MainWindow],
) -> None:
    configure(
        use_model_server=True,
        model_server_url=looping_server.url,
        model_server_model=looping_server.alias,
    )
    window = open_window()
    wait_for_model(qtbot, window)
    ask_and_wait_for_text(qtbot, window, "Go on")
    looping_server.kill()
    wait_for_answer(qtbot, window)
    _user, answer = window.chat.bubbles()
    assert answer.role == "assistant" and answer.text  # what it wrote stays
    assert "what it wrote is kept" in window.banner.text()
    stored = window.store.messages(window.chat_controller.conversation_id)
    assert stored[-1].finish_reason == "failed" and stored[-1].content == answer.text
