"""``footnote --self-test``: proves an installation works, end to end, offline.

It runs the real thing, not a probe of each library: the real window (built
by the composition root, shown offscreen), the real llama.cpp answering one
question, and the real document library indexing and finding one document
with the embedding model shipped in the package. Everything happens in a
temporary ``FOOTNOTE_HOME``, so the user's settings, conversations and
indexes are never touched, and the temporary folder is removed afterwards.

The model is the tiny Phi-3-architecture GGUF the tests generate
(engine.synthetic_model): no download, and its scripted weights give a known
answer, so "answered" can be checked exactly.

Exit status 0 with one line saying what passed, or 1 with one line saying
which step failed and why (details go to the log in the temporary home,
which is printed on failure and kept).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.main_window import MainWindow

log = logging.getLogger(__name__)

MODEL_LOAD_TIMEOUT_S = 120.0
ANSWER_TIMEOUT_S = 120.0
INDEX_TIMEOUT_S = 300.0  # torch + MiniLM load on a slow machine
QUESTION = "What is Footnote?"
DOCUMENT_NAME = "self-test-note.md"
DOCUMENT_TEXT = (
    "# Lighthouse keeping\n\n"
    "The keeper of the Blackrock lighthouse polished the brass lens every "
    "Tuesday and logged the tides in a green notebook.\n"
)
DOCUMENT_QUERY = "Which day was the lighthouse lens polished?"


class SelfTestFailed(Exception):
    """One step of the self-test did not do what it must."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


def main() -> int:
    """Run the self-test; print one line; return the exit status."""
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="footnote-self-test-"))
    # Before Qt is imported: no window appears, and no display is needed.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["FOOTNOTE_HOME"] = str(tmp / "home")
    os.environ["HF_HUB_OFFLINE"] = "1"  # the shipped weights must suffice
    try:
        summary = _run(tmp)
    except SelfTestFailed as exc:
        print(f"Footnote self-test failed: {exc} (log: {tmp / 'home' / 'logs'})", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - any crash must end in one readable line
        traceback.print_exc(file=sys.stderr)
        print(
            f"Footnote self-test failed: unexpected {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"Footnote self-test passed in {time.monotonic() - started:.1f} s: {summary}")
    return 0


def _run(tmp: Path) -> str:
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from app.application import build_main_window, configure_application
    from app.logs import configure_logging
    from app.paths import AppPaths
    from app.settings import load_settings, save_settings
    from engine.synthetic_model import SCRIPTED_ANSWER, write_phi3_gguf

    paths = AppPaths.from_environment().ensure()
    configure_logging(paths.log_file)
    # Qt's own chatter (the offscreen platform's "does not support ...") goes
    # to the log: the self-test's output is its one line.
    qInstallMessageHandler(lambda _mode, _context, message: log.debug("Qt: %s", message))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    configure_application(app)

    # 1. No model configured: the first-run screen.
    window = build_main_window(paths)
    window.show()
    try:
        if window.pages.currentWidget() is not window.welcome:
            raise SelfTestFailed("first run", "the welcome screen is not shown without a model")
    finally:
        _close(window)

    # 2. A model chosen (as after "Open a GGUF file…"): load it and answer.
    model = write_phi3_gguf(tmp / "Phi-3-self-test.gguf")
    settings = load_settings(paths.settings_file).settings
    settings.remember_model(str(model))
    save_settings(paths.settings_file, settings)
    window = build_main_window(paths)
    load_errors: list[str] = []
    window.engine.model_failed.connect(lambda exc: load_errors.append(str(exc)))
    window.show()
    try:
        _wait(
            lambda: window.engine.model is not None or bool(load_errors),
            MODEL_LOAD_TIMEOUT_S,
            "loading the model",
            lambda: f"llama.cpp did not load {model.name}",
        )
        if load_errors:
            raise SelfTestFailed("loading the model", load_errors[0])
        backend = window.engine.model.backend_label if window.engine.model else "?"
        window.send(QUESTION)
        _wait(
            lambda: not window.composer.generating and bool(_answer(window)),
            ANSWER_TIMEOUT_S,
            "answering",
            lambda: "no answer came back from llama.cpp",
        )
        answer = _answer(window)
        if answer.strip() != SCRIPTED_ANSWER.strip():
            raise SelfTestFailed("answering", f"unexpected answer {answer[:80]!r}")
    finally:
        _close(window)

    # 3. One generated document, indexed and found with the shipped embedder.
    docs = tmp / "documents"
    docs.mkdir()
    (docs / DOCUMENT_NAME).write_text(DOCUMENT_TEXT, encoding="utf-8")
    found = _index_and_search(paths.data / "self-test-documents", docs)
    return f"window, {model.name} answered through llama.cpp ({backend}), {found}"


def _answer(window: MainWindow) -> str:
    """The text of the newest assistant message of the shown conversation."""
    conversation_id = window.conversation_id
    if conversation_id is None:
        return ""
    messages = window.store.messages(conversation_id)
    answers = [m.content for m in messages if m.role == "assistant"]
    return answers[-1] if answers else ""


def _index_and_search(library_dir: Path, docs: Path) -> str:
    """Index ``docs`` with the real DocumentLibrary on a worker thread (the
    embedder loads torch: seconds), keep the Qt event loop turning, then
    search for the document."""
    try:
        from retrieval.documents import DocumentLibrary
        from retrieval.embedding import Embedder
        from retrieval.ingest_events import FileFailed
    except ImportError as exc:
        raise SelfTestFailed("indexing", f"this build has no document library ({exc})") from exc

    failures: list[FileFailed] = []
    found: list[str] = []
    errors: list[Exception] = []

    def work() -> None:
        # The library's SQLite connections belong to the thread that made them.
        try:
            library = DocumentLibrary(library_dir, Embedder)
            try:
                library.add_collection("self-test", [docs])
                for event in library.index("self-test", threading.Event()):
                    if isinstance(event, FileFailed):
                        failures.append(event)
                found.extend(p.text for p in library.search(DOCUMENT_QUERY, k=3))
            finally:
                library.close()
        except Exception as exc:  # noqa: BLE001 - re-raised as a step failure below
            errors.append(exc)

    worker = threading.Thread(target=work, name="self-test-index", daemon=True)
    worker.start()
    _wait(
        lambda: not worker.is_alive(),
        INDEX_TIMEOUT_S,
        "indexing",
        lambda: "indexing one small file did not finish",
    )
    if errors:
        detail = getattr(errors[0], "detail", "")
        raise SelfTestFailed("indexing", f"{errors[0]}{f' ({detail})' if detail else ''}")
    if failures:
        raise SelfTestFailed("indexing", f"{DOCUMENT_NAME} failed: {failures[0].reason}")
    if not found or "Tuesday" not in found[0]:
        raise SelfTestFailed("searching", "the indexed document was not found")
    return f"{DOCUMENT_NAME} indexed and found"


def _wait(
    condition: Callable[[], bool], timeout_s: float, step: str, reason: Callable[[], str]
) -> None:
    """Turn the Qt event loop until ``condition`` holds (queued signals from
    the engine thread are delivered meanwhile), or fail the step."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(
        lambda: loop.quit() if condition() or time.monotonic() > deadline else None
    )
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    if not condition():
        raise SelfTestFailed(step, reason())


def _close(window: MainWindow) -> None:
    window.close()
    window.store.close()
    if window.engine.is_running():
        raise SelfTestFailed("closing", "the engine thread did not stop with the window")
