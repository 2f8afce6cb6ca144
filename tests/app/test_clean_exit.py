"""The app must exit cleanly after a chat: no crash at interpreter shutdown.

Runs in a subprocess because the failure it guards against (PySide6 6.12.0
dropping a reference on queued cross-thread signals) only shows when the
interpreter finalizes.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.application import build_main_window, configure_application
from app.paths import AppPaths
from app.settings import load_settings, save_settings

app = QApplication(sys.argv)
paths = AppPaths.from_environment().ensure()
settings = load_settings(paths.settings_file).settings
settings.model_path = sys.argv[1]
save_settings(paths.settings_file, settings)
configure_application(app)
window = build_main_window(paths)
window.show()
questions = ["first question", "second question"]

def step():
    if window.engine.model is None or window.composer.generating:
        QTimer.singleShot(20, step)
    elif questions:
        window.send(questions.pop(0))
        QTimer.singleShot(20, step)
    else:
        window.close()
        app.quit()

QTimer.singleShot(0, step)
app.exec()
window.store.close()
print("answers:", len(window.chat.bubbles()) // 2)
"""


def test_app_exits_cleanly_after_chatting(tiny_model: Path, footnote_home: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FOOTNOTE_HOME": str(footnote_home)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_model)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Fatal Python error" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    assert "answers: 2" in result.stdout


KILL_SCRIPT = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.application import build_main_window, configure_application
from app.paths import AppPaths
from app.settings import load_settings, save_settings

app = QApplication(sys.argv)
paths = AppPaths.from_environment().ensure()
settings = load_settings(paths.settings_file).settings
settings.model_path = sys.argv[1]
settings.context_tokens = 1024
save_settings(paths.settings_file, settings)
configure_application(app)
window = build_main_window(paths)
questions = ["an earlier question", "a question cut off by the kill"]

def step():
    if window.engine.model is None or window.composer.generating:
        QTimer.singleShot(20, step)
        return
    window.send(questions.pop(0))
    if questions:
        QTimer.singleShot(20, step)
    else:
        window.chat.streaming_rendered.connect(lambda: print("STREAMING", flush=True))

QTimer.singleShot(0, step)
app.exec()
"""


def test_killing_the_app_mid_answer_loses_no_earlier_messages(
    looping_model: Path, footnote_home: Path
) -> None:
    from engine.history import ConversationStore

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FOOTNOTE_HOME": str(footnote_home)}
    # The looping model answers until its context is full: the first answer
    # completes (fills the 1,024-token context), the second is killed while streaming
    # (with less room, e.g. 512 tokens less the system prompt and its source rules,
    # the second answer could end before its first render: no STREAMING).
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(looping_model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        _wait_for_line(proc, "STREAMING", timeout=120)
        proc.kill()
    finally:
        proc.wait(30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()

    store = ConversationStore(footnote_home / "data" / "conversations.sqlite3")
    try:
        [conversation] = store.conversations()
        stored = store.messages(conversation.id)
    finally:
        store.close()
    messages = [(m.role, m.content[:30]) for m in stored]
    assert messages[0] == ("user", "an earlier question")
    assert messages[1][0] == "assistant"
    assert messages[2] == ("user", "a question cut off by the kill")
    # What had been written of the killed answer was saved as it streamed.
    assert (stored[3].role, stored[3].finish_reason) == ("assistant", "interrupted")
    assert stored[3].content


def _wait_for_line(proc: subprocess.Popen[str], wanted: str, timeout: float) -> None:
    """Read the child's stdout until ``wanted``; fail (never hang) on silence or exit."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            proc.kill()
            pytest.fail(f"no {wanted!r} from the app within {timeout} s")
        line = proc.stdout.readline()
        if not line:
            stderr = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"the app exited before {wanted!r}: {stderr}")
        if line.strip() == wanted:
            return
