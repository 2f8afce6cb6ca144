"""Cited answers in the real window: the tiny scripted Phi-3 on real llama.cpp,
a tiny collection indexed with the real MiniLM into real chromadb, and for the
web a real 127.0.0.1 server speaking SearXNG's JSON API (the only stand-in
for a public search engine) that also serves the result page."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication

from app.application import build_main_window, configure_application
from app.main_window import MainWindow
from app.paths import AppPaths
from app.settings import load_settings
from app.widgets.settings_dialog import speed_explanation
from app.widgets.sources_panel import source_url
from engine.budget import FirstWordTarget
from engine.events import Progress
from retrieval.source_decision import SourceMode
from retrieval.web.need_search import WebMode
from tests.app.conftest import close, wait_for_answer, wait_for_model
from tests.app.test_cli_grounding import searxng_and_pages
from tests.app.test_documents_page import wait_idle

if TYPE_CHECKING:
    from retrieval.embedding import Embedder

QUESTION = "What is the travel budget of the team?"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    from retrieval.embedding import Embedder

    model = Embedder()
    model.load()
    return model


@pytest.fixture
def team_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "plan.md").write_text(
        "# Budget\n\nThe 2025 travel budget of the team is 12,400 euros, approved in March.\n"
    )
    return folder


@pytest.fixture
def grounded(
    qtbot, qapp: QApplication, paths: AppPaths, embedder: Embedder, configure, tiny_model: Path
) -> Iterator[Callable[..., MainWindow]]:
    """The window with the tiny model loaded; its library shares the session's embedder."""
    from retrieval.documents import DocumentLibrary

    configure_application(qapp)
    opened: list[MainWindow] = []

    def start(**settings: object) -> MainWindow:
        configure(model_path=str(tiny_model), **settings)
        window = build_main_window(
            paths, open_documents=lambda: DocumentLibrary(paths.documents, lambda: embedder)
        )
        qtbot.addWidget(window)
        window.show()
        opened.append(window)
        wait_for_model(qtbot, window)
        return window

    yield start
    for window in opened:
        close(window)


def index(qtbot, window: MainWindow, folder: Path, name: str = "team") -> None:
    window.documents_controller.add_paths([folder], name)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: name in window.documents_controller.collection_names())
    window._show_home_page()


@pytest.fixture
def opened_urls(monkeypatch: pytest.MonkeyPatch) -> list[QUrl]:
    """What the app asked the system to open (a viewer, the browser)."""
    urls: list[QUrl] = []

    def record(url: QUrl) -> bool:
        urls.append(QUrl(url))
        return True

    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(record))
    return urls


def statuses_of(window: MainWindow) -> list[str]:
    seen: list[str] = []
    window.engine.turn_event.connect(
        lambda _id, event: seen.append(event.text) if isinstance(event, Progress) else None
    )
    return seen


def test_an_answer_from_documents_lists_and_opens_its_sources_also_when_reopened(
    qtbot, grounded, team_folder: Path, opened_urls: list[QUrl]
) -> None:
    window = grounded()
    index(qtbot, window, team_folder)
    chooser = window.composer.collections_chooser
    assert chooser.isVisible() and chooser.text() == "Auto · All documents"
    statuses = statuses_of(window)
    window.send(QUESTION)
    wait_for_answer(qtbot, window)

    assert "Looking in your documents…" in statuses
    assert "Reading 1 source…" in statuses
    answer = window.chat.bubbles()[-1]
    assert answer.role == "assistant" and answer.text
    panel = answer.sources_panel
    assert panel is not None and len(panel.rows) == 1
    row = panel.rows[0].text()
    assert "[1]" in row and "plan.md" in row and "Budget" in row and "12,400 euros" in row

    qtbot.mouseClick(panel.rows[0], Qt.MouseButton.LeftButton)
    assert [u.toLocalFile() for u in opened_urls] == [str(team_folder / "plan.md")]
    assert answer.open_link("cite:1")  # an inline [1] in the answer
    assert opened_urls[-1].toLocalFile() == str(team_folder / "plan.md")
    assert not answer.open_link("cite:2")  # no such source

    conversation = window.conversation_id
    window.new_conversation()
    assert window.conversation_id != conversation
    window.show_conversation(conversation)
    reopened = window.chat.bubbles()[-1]
    assert reopened.sources_panel is not None
    assert "plan.md" in reopened.sources_panel.rows[0].text()
    assert "Budget" in reopened.sources_panel.rows[0].text()


def test_a_collection_left_out_is_not_searched_and_the_choice_is_kept(
    qtbot, grounded, team_folder: Path
) -> None:
    window = grounded()
    index(qtbot, window, team_folder)
    window.send("first question")
    wait_for_answer(qtbot, window)
    conversation = window.conversation_id
    window.composer.collections_chooser.toggle_collection("team")
    assert window.composer.collections_chooser.text() == "No documents"
    assert window.store.conversation_options(conversation) == {
        "web": "off",
        "collections": [],
        "documents": "auto",
    }

    statuses = statuses_of(window)
    window.send(QUESTION)
    wait_for_answer(qtbot, window)
    assert "Looking in your documents…" not in statuses
    assert window.chat.bubbles()[-1].sources_panel is None

    window.new_conversation()  # a new conversation uses every collection again
    assert window.composer.collections_chooser.text() == "Auto · All documents"
    window.show_conversation(conversation)
    assert window.composer.collections_chooser.text() == "No documents"


def test_web_search_always_numbers_pages_and_documents_together_and_fills_the_ledger(
    qtbot, grounded, team_folder: Path, opened_urls: list[QUrl]
) -> None:
    with searxng_and_pages() as (base, queries):
        window = grounded(web_searxng_url=base, web_allow_local_fetch=True)
        index(qtbot, window, team_folder)
        toggle = window.composer.web_toggle
        assert toggle.mode is WebMode.OFF  # until the user turns it on
        assert "Nothing leaves this computer" in toggle.toolTip()
        toggle.choose(WebMode.ALWAYS)
        assert "Privacy Ledger" in toggle.toolTip()
        # The budget note does not answer this question: Auto would hold it back.
        window.composer.collections_chooser.choose_mode(SourceMode.ALWAYS)
        statuses = statuses_of(window)
        window.send("Who built the Velmora lighthouse?")
        qtbot.waitUntil(lambda: bool(queries), timeout=60_000)
        wait_for_answer(qtbot, window)

        query = queries[0]
        assert query.strip()
        assert any(s.startswith(f"Searching the web for “{query}”") for s in statuses), statuses
        assert window.edit_query_button.isVisible()
        assert window.activity.text() == f"Searched the web for “{query}”"
        panel = window.chat.bubbles()[-1].sources_panel
        assert panel is not None
        rows = [row.text() for row in panel.rows]
        assert [r.split("]")[0].rsplit("[", 1)[1] for r in rows] == [
            str(n) for n in range(1, len(rows) + 1)
        ]
        web = [i for i, source in enumerate(panel.sources) if source.kind == "web"]
        documents = [i for i, source in enumerate(panel.sources) if source.kind == "document"]
        assert web and documents
        assert "Velmora harbour lighthouse" in rows[web[0]] and f"{base}/article" in rows[web[0]]
        assert "127.0.0.1" in rows[web[0]]
        panel.open(web[0] + 1)
        assert opened_urls[-1].toString() == f"{base}/article"
        # Stored as asked: the question as written, the passages sent with it apart.
        question, answer = window.store.messages(window.conversation_id)
        assert question.content == "Who built the Velmora lighthouse?"
        assert question.model_content is None
        sent = [(s.n, s.citation) for s in question.sent_sources]
        assert sent == [(s.n, s.citation) for s in answer.sources] and sent

        window.show_ledger()
        ledger = window.ledger_page
        assert not ledger.empty.isVisible()
        texts = [text for _time, _kind, _to, text in ledger.rows()]
        assert query in texts and f"{base}/article" in texts
        window._show_home_page()

        # Edit query: the same question again, searched with the user's words.
        conversation = window.conversation_id
        window.chat_controller.rerun_with_query("Velmora lighthouse engineer")
        wait_for_answer(qtbot, window)
        assert queries[-1] == "Velmora lighthouse engineer"
        messages = window.store.messages(conversation)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[0].content == "Who built the Velmora lighthouse?"
        assert any(s.kind == "web" for s in messages[1].sources)
        assert "Velmora lighthouse engineer" in [t for *_, t in window.ledger_page.rows()]

    # The mode is the conversation's, and new conversations now start with it.
    assert window.store.conversation_options(conversation)["web"] == "always"
    assert load_settings(window.paths.settings_file).settings.default_web_mode == "always"
    asked: list[str] = []
    window.confirm = lambda title, _text: asked.append(title) or True  # type: ignore[method-assign]
    window.ledger_page.clear()
    assert asked == ["Clear the privacy ledger?"]
    assert window.ledger_page.rows() == []
    assert window.ledger_page.empty.text() == "Nothing has left this computer."


def test_with_web_search_off_no_socket_is_opened_and_the_ledger_stays_empty(
    qtbot, grounded, team_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = grounded(web_searxng_url="http://127.0.0.1:9/", web_allow_local_fetch=True)
    index(qtbot, window, team_folder)
    connects: list[Any] = []
    guarded = socket.socket.connect

    def record(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            connects.append(address)
        return guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    assert window.composer.web_toggle.mode is WebMode.OFF
    window.send("What is the travel budget of the team?")
    wait_for_answer(qtbot, window)
    assert window.chat.bubbles()[-1].sources_panel is not None  # documents still answered
    assert connects == []
    assert not window.edit_query_button.isVisible()
    window.show_ledger()
    assert window.ledger_page.rows() == []
    assert window.ledger_page.empty.isVisible()


def test_auto_holds_documents_back_from_a_greeting_and_one_click_sends_them(
    qtbot, grounded, team_folder: Path
) -> None:
    window = grounded()
    index(qtbot, window, team_folder)
    chooser = window.composer.collections_chooser
    assert chooser.mode is SourceMode.AUTO  # the default once a collection exists
    window.send("Say hello in one sentence.")
    wait_for_answer(qtbot, window)
    assert window.chat.bubbles()[-1].sources_panel is None
    assert window.activity.text() == "Not using your documents: no facts needed"
    assert window.use_documents_button.isVisible()
    assert not window.edit_query_button.isVisible()

    conversation = window.conversation_id
    window.use_documents_button.click()
    wait_for_answer(qtbot, window)
    messages = window.store.messages(conversation)
    assert [m.role for m in messages] == ["user", "assistant"]  # asked again, not added
    assert messages[0].content == "Say hello in one sentence."
    assert [s.citation for s in messages[1].sources] == ["plan.md › Budget"]
    assert window.chat.bubbles()[-1].sources_panel is not None
    # The exchange without documents is kept as the first version (#18).
    assert len(window.store.all_messages(conversation)) == 4
    assert window.chat.bubbles()[0].version_label.text() == "2/2"
    assert not window.use_documents_button.isVisible()
    # Only that turn: the conversation stays on Auto.
    assert chooser.mode is SourceMode.AUTO
    assert window.store.conversation_options(conversation)["documents"] == "auto"

    # A question the documents answer is grounded as before.
    window.send("What is the travel budget of the team?")
    wait_for_answer(qtbot, window)
    assert window.chat.bubbles()[-1].sources_panel is not None
    assert not window.use_documents_button.isVisible()

    # Off: never, and the choice is kept with the conversation.
    chooser.choose_mode(SourceMode.OFF)
    assert chooser.text() == "Documents off"
    window.send("What is the travel budget of the team?")
    wait_for_answer(qtbot, window)
    assert window.chat.bubbles()[-1].sources_panel is None
    assert window.store.conversation_options(conversation)["documents"] == "off"


@contextmanager
def counting_server() -> Iterator[tuple[str, list[str]]]:
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="test-pixel", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_answers_load_no_remote_image_and_show_where_links_really_go(
    qtbot, open_window, opened_urls: list[QUrl]
) -> None:
    window = open_window()
    with counting_server() as (base, requests):
        text = (
            f"Look: ![tracking pixel]({base}/pixel.png) and "
            "[mybank.example](http://evil.example/login) or <script>alert(1)</script> "
            "[file](file:///etc/passwd)"
        )
        bubble = window.chat.add_message("assistant", text)
        bubble.grab()  # painted: an <img> would be loaded now, synchronously
        html = bubble.body.text()
        assert requests == []
        assert "<img" not in html and "<script" not in html
        assert f'<a href="{base}/pixel.png">[image: tracking pixel]</a>' in html
        assert "(http://evil.example/login)" in html  # the real target, visible
        assert not bubble.open_link("file:///etc/passwd")
        assert not bubble.open_link("javascript:alert(1)")
        assert opened_urls == []
        assert bubble.open_link("http://evil.example/login")
        assert opened_urls[-1].toString() == "http://evil.example/login"


def test_the_measured_prompt_speed_is_restored_per_model_and_explained(
    qtbot, configure, open_window, tiny_model: Path
) -> None:
    saved = {"version": 1, "default_tokens_per_s": 5.0, "samples": [123.0, 125.0, 127.0]}
    configure(model_path=str(tiny_model), prompt_speeds={str(tiny_model): saved})
    window = open_window()
    wait_for_model(qtbot, window)
    assert window.engine.prompt_tokens_per_s == 125.0
    assert window.engine.prompt_speed_measured
    stored = load_settings(window.paths.settings_file).settings.prompt_speeds[str(tiny_model)]
    assert stored["samples"] == [123.0, 125.0, 127.0]

    text = speed_explanation(20.0, True, FirstWordTarget.BALANCED)
    assert "reads ~20 tokens/s" in text and "Balanced ≈ 500 tokens" in text
    assert "estimate" in speed_explanation(20.0, False, FirstWordTarget.FAST)


def test_a_pdf_source_opens_at_its_page_where_the_viewer_honours_it() -> None:
    location = {"path": "/docs/report.pdf", "page": 3}
    assert source_url("document", location, "darwin").toString() == "file:///docs/report.pdf#page=3"
    assert source_url("document", location, "linux").toString() == "file:///docs/report.pdf"
    assert source_url("web", {"url": "javascript:alert(1)"}) is None
    assert source_url("web", {"url": "https://example.org/a"}).toString() == (
        "https://example.org/a"
    )
