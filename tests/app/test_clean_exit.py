"""The app must exit cleanly after a chat: no crash at interpreter shutdown.

Runs in a subprocess because the failure it guards against (PySide6 6.12.0
dropping a reference on queued cross-thread signals) only shows when the
interpreter finalizes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
