"""The window's driver for the versions scene of ``packaging/screenshots.py``.

The window is the real one (``app.application.build_main_window``) on the
virtual screen, with the tiny cited model, a real indexed PDF and the
stand-in SearXNG of the cited scene. This process clicks its buttons
(Regenerate, Edit) through Qt, because their place on screen moves with the
text, and tells screenshots.py (by touching a file in ``steps``) when a
scene is ready to capture; it waits for ``<step>.captured`` to go on:

1. ``screenshot-regenerate.png``: an answer regenerated, ‹ 2/2 › under it;
2. ``screenshot-edit.png``: the question in its inline editor;
3. ``screenshot-edited-branch.png``: the edited question sent, ‹ 2/2 › on it;
4. ``screenshot-export.png``: File → Export… as Markdown, the file opened in a
   text viewer beside the window (footnotes keep the PDF's page and the URL).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_QUESTION = "Who built the Velmora lighthouse?"
EDITED_QUESTION = "Who built the Velmora lighthouse, and what will its repair cost?"
STEP_TIMEOUT_S = 240.0
VIEWER_TITLE = "Velmora lighthouse.md — exported by Footnote"


# ---------------------------------------------------------------------- the driver


def drive(steps: Path, exported: Path) -> None:
    """Runs in its own process: the real window under its own event loop,
    clicked through Qt by a script that waits on conditions between steps."""
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.application import build_main_window, configure_application
    from app.paths import AppPaths

    app = QApplication(sys.argv)
    configure_application(app)
    window = build_main_window(AppPaths.from_environment().ensure())
    window.resize(1240, 800)
    window.move(0, 0)
    window.show()

    def answered() -> bool:
        bubbles = window.chat.bubbles()
        return bool(bubbles) and bubbles[-1].role == "assistant" and not window.composer.generating

    def after(seconds: float) -> Callable[[], bool]:
        at = time.monotonic() + seconds
        return lambda: time.monotonic() >= at

    def ready(step: str) -> Iterator[Callable[[], bool]]:
        yield after(1.0)  # painted
        (steps / step).touch()
        captured = steps / f"{step}.captured"
        yield captured.exists

    def script() -> Iterator[Callable[[], bool]]:
        yield lambda: window.engine.model is not None
        window.send(FIRST_QUESTION)
        yield answered
        window.chat.bubbles()[-1].regenerate_button.click()
        yield answered
        yield from ready("regenerated")

        question = window.chat.bubbles()[0]
        question.edit_button.click()
        assert question.editor is not None
        question.editor.setPlainText(EDITED_QUESTION)
        yield from ready("editing")
        question.submit_edit()
        yield answered
        yield from ready("edited")

        window.conversation_files.export_current(exported)
        window.banner.hide()
        window.resize(730, 800)
        yield from ready("exported")

    steps_left = script()
    waiting = [next(steps_left)]
    deadline = [time.monotonic() + STEP_TIMEOUT_S]

    def tick() -> None:
        if time.monotonic() > deadline[0]:
            raise SystemExit("the window did not get there in time")
        if not waiting[0]():
            return
        deadline[0] = time.monotonic() + STEP_TIMEOUT_S
        try:
            waiting[0] = next(steps_left)
        except StopIteration:
            timer.stop()
            window.close()
            app.quit()

    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(tick)
    timer.start()
    app.exec()


def view(path: Path) -> None:
    """A plain text viewer of the exported file (what a text editor shows)."""
    from PySide6.QtGui import QFont
    from PySide6.QtWidgets import QApplication, QPlainTextEdit

    app = QApplication(sys.argv)
    viewer = QPlainTextEdit()
    viewer.setPlainText(path.read_text(encoding="utf-8"))
    viewer.setReadOnly(True)
    viewer.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    font = QFont("DejaVu Sans Mono")
    font.setPointSize(9)
    viewer.setFont(font)
    viewer.setWindowTitle(VIEWER_TITLE)
    viewer.resize(620, 800)
    viewer.show()
    app.exec()


if __name__ == "__main__":
    if sys.argv[1] == "--drive":
        drive(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1] == "--view":
        view(Path(sys.argv[2]))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}; run packaging/screenshots.py versions")
