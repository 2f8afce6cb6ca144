"""Keyboard and screen reader: every control is reached by Tab in reading
order and has a name a screen reader can say; sources and inline citations
open with Enter; banners stay on the page they were raised on."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAccessible, QDesktopServices
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QLabel, QWidget

from app.main_window import MainWindow
from app.widgets.settings_dialog import SettingsDialog
from tests.app.test_themes import busy_window  # noqa: F401 - the fixture

MAX_TAB_PRESSES = 300


def accessible_name(widget: QWidget) -> str:
    """What a screen reader says for it (accessibleName, else its text, a
    form label that is its buddy, …): Qt's own accessibility interface. A
    spin box's inner line edit speaks for the spin box."""
    parent = widget.parentWidget()
    if parent is not None and (
        parent.focusProxy() is widget or isinstance(parent, QAbstractSpinBox)
    ):
        widget = parent
    interface = QAccessible.queryAccessibleInterface(widget)
    return interface.text(QAccessible.Text.Name).strip() if interface is not None else ""


def focus_chain(root: QWidget) -> list[QWidget]:
    """Qt's Tab chain from ``root``: the visible, enabled widgets Tab stops at."""
    stops: list[QWidget] = []
    widget = root.nextInFocusChain()
    while widget is not root and len(stops) < MAX_TAB_PRESSES:
        if (
            widget.isVisible()
            and widget.isEnabled()
            and widget.focusPolicy() & Qt.FocusPolicy.TabFocus
            and root.isAncestorOf(widget)
        ):
            stops.append(widget)
        widget = widget.nextInFocusChain()
    return stops


def tab_through(qtbot, window: QWidget, start: QWidget) -> list[QWidget]:
    """Press Tab from ``start`` until focus comes back to it: where it went."""
    start.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is start)
    visited: list[QWidget] = []
    for _ in range(MAX_TAB_PRESSES):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        current = QApplication.focusWidget()
        if current is start:
            return visited
        if current is not None and (not visited or visited[-1] is not current):
            visited.append(current)
    pytest.fail(f"Tab never came back to {start.objectName()}: {describe(visited[-10:])}")


def describe(widgets: list[QWidget]) -> list[str]:
    return [f"{type(w).__name__}#{w.objectName()} {accessible_name(w)!r}" for w in widgets]


def unnamed(widgets: list[QWidget]) -> list[str]:
    return describe([w for w in widgets if not accessible_name(w)])


@pytest.fixture
def active(qtbot, busy_window: MainWindow) -> MainWindow:  # noqa: F811
    busy_window.activateWindow()
    qtbot.waitUntil(busy_window.isActiveWindow)
    return busy_window


def test_tab_reads_the_chat_page_in_order_and_every_stop_has_a_name(
    qtbot, active: MainWindow
) -> None:
    window = active
    window.banner.show_message("The model could not be loaded.", details="trace")
    answer = window.chat.bubbles()[-1]
    assert answer.sources_panel is not None
    visited = tab_through(qtbot, window, window.new_chat_button)
    assert not unnamed(visited), unnamed(visited)

    def at(widget: QWidget) -> int:
        assert widget in visited, f"Tab never reaches {describe([widget])}: {describe(visited)}"
        return visited.index(widget)

    rows = answer.sources_panel.rows
    citations = next(label for label in answer.findChildren(QLabel) if "cite:1" in label.text())
    composer = window.composer
    order = [
        window.conversations,
        *window.banner.buttons(),
        window.chat,  # the conversation itself: Page Up/Down scroll it
        citations,
        *rows,
        answer.copy_button,
        composer.edit,
        composer.web_toggle,
        composer.button,
    ]
    assert not composer.collections_chooser.isVisible()  # (shown once there are documents)
    positions = [at(w) for w in order]
    assert positions == sorted(positions), describe(sorted(order, key=at))


@pytest.mark.parametrize("page_name", ["welcome", "models_page", "documents_page", "ledger_page"])
def test_every_control_on_each_page_has_a_name(active: MainWindow, page_name: str) -> None:
    window = active
    page = getattr(window, page_name)
    window.pages.setCurrentWidget(page)
    QApplication.processEvents()
    stops = focus_chain(page)
    assert stops, f"nothing on the {page_name} can be reached by Tab"
    assert not unnamed(stops), unnamed(stops)


def test_the_search_box_reads_in_order_names_its_parts_and_escape_closes_it(
    qtbot, active: MainWindow
) -> None:
    window = active
    conversation = window.store.create_conversation("Reading list in Markdown")
    window.store.add_message(conversation.id, "user", "How do I keep a reading list?")
    window.search_conversations()
    popup = window.search_popup
    assert popup is not None
    qtbot.waitUntil(lambda: popup.query.hasFocus())
    popup.query.setText("reading list")
    popup.search_now()
    assert popup.hits
    stops = focus_chain(popup)
    assert stops[:2] == [popup.query, popup.results], stops
    assert not unnamed(stops), unnamed(stops)
    QTest.keyClick(popup.query, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not popup.isVisible())


def test_every_settings_control_has_a_name(qtbot, active: MainWindow) -> None:
    dialog = SettingsDialog(active.settings, active)
    qtbot.addWidget(dialog)
    dialog.show()
    stops = focus_chain(dialog)
    assert dialog.theme in stops and dialog.model_path in stops
    assert not unnamed(stops), unnamed(stops)


def test_the_controls_a_screen_reader_user_needs_say_what_they_are(active: MainWindow) -> None:
    window = active
    assert accessible_name(window.composer.edit) == "Message"
    assert accessible_name(window.conversations) == "Conversations"
    assert accessible_name(window.banner.close_button) == "Dismiss"  # not "✕"
    for widget in (
        window.composer.edit,
        window.composer.button,
        window.conversations,
        window.new_chat_button,
        window.banner.close_button,
    ):
        interface = QAccessible.queryAccessibleInterface(widget)
        assert interface.text(QAccessible.Text.Description), describe([widget])
    row = window.chat.bubbles()[-1].sources_panel.rows[0]
    assert accessible_name(row) == "Source 1: guide.pdf, p. 4"


@pytest.fixture
def opened_urls(monkeypatch: pytest.MonkeyPatch) -> list[QUrl]:
    urls: list[QUrl] = []

    def record(url: QUrl) -> bool:
        urls.append(QUrl(url))
        return True

    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(record))
    return urls


@pytest.fixture(autouse=True)
def no_real_viewer(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test starts a PDF viewer: there is no default one."""
    monkeypatch.setattr("app.widgets.sources_panel._pdf_viewer", lambda: None)


def test_sources_and_citations_open_with_enter(
    qtbot, active: MainWindow, opened_urls: list[QUrl]
) -> None:
    answer = active.chat.bubbles()[-1]
    web_row = answer.sources_panel.rows[1]
    web_row.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.keyClick(web_row, Qt.Key.Key_Return)
    assert opened_urls[-1].toString() == "https://example.org/footnote"
    qtbot.keyClick(answer.sources_panel.rows[0], Qt.Key.Key_Space)
    assert opened_urls[-1].toLocalFile().endswith("guide.pdf")

    # Inline citations: Tab reaches the answer's text, then each [n] in turn.
    citations = next(label for label in answer.findChildren(QLabel) if "cite:2" in label.text())
    active.conversations.setFocus(Qt.FocusReason.TabFocusReason)
    for _ in range(MAX_TAB_PRESSES):
        if QApplication.focusWidget() is citations:
            break
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is citations
    opened = len(opened_urls)
    qtbot.keyClick(citations, Qt.Key.Key_Tab)  # its first link
    qtbot.keyClick(citations, Qt.Key.Key_Return)  # [1]
    qtbot.keyClick(citations, Qt.Key.Key_Tab)
    qtbot.keyClick(citations, Qt.Key.Key_Return)  # [2]
    assert [u.scheme() for u in opened_urls[opened:]] == ["file", "https"]
    qtbot.keyClick(citations, Qt.Key.Key_Tab)  # past its last link: on to the sources
    assert QApplication.focusWidget() is answer.sources_panel.rows[0]


def test_a_banner_stays_on_the_page_and_conversation_it_was_raised_on(
    qtbot, active: MainWindow
) -> None:
    window = active
    first = window.store.create_conversation()
    second = window.store.create_conversation()
    window.conversations_controller.refresh(select=first.id)
    window.show_conversation(first.id)
    window.banner.show_message("This conversation could not be saved.")
    qtbot.waitUntil(lambda: window.banner._claimed)
    assert window.banner.isVisible()

    window.show_models()
    assert not window.banner.isVisible()  # not carried to the Models page
    window._show_home_page()
    assert window.banner.isVisible()  # back where it was raised: still there

    window.conversations.setCurrentItem(window.conversations.item_for(second.id))
    assert window.conversation_id == second.id
    assert not window.banner.isVisible()  # nor to another conversation
    window.conversations.setCurrentItem(window.conversations.item_for(first.id))
    assert window.conversation_id == first.id
    assert window.banner.isVisible()

    window.banner.close_button.click()
    window.show_models()
    window._show_home_page()
    assert not window.banner.isVisible()  # dismissed stays dismissed


def test_a_message_raised_as_the_app_switches_page_goes_with_it(qtbot, active: MainWindow) -> None:
    """A failure that opens another page (a load that failed opens Models)."""
    window = active
    window.banner.show_message("No model file at /gone.gguf.")
    window.show_models()  # in the same event-loop turn
    qtbot.waitUntil(lambda: window.banner._claimed)
    assert window.banner.isVisible()


def test_the_models_page_never_scrolls_sideways(qtbot, active: MainWindow, tmp_path: Path) -> None:
    """Long file names and folders wrap; the page follows the window's width."""
    window = active
    deep = tmp_path.joinpath(*["a_folder_with_a_rather_long_name"] * 5)
    deep.mkdir(parents=True)
    model = deep / "Meta-Llama-3.1-8B-Instruct-abliterated-Q4_K_M-imatrix.gguf"
    model.write_bytes(b"GGUF")
    window.settings.recent_models.append(str(model))
    window.show_models()
    window.refresh_installed()
    qtbot.waitUntil(lambda: any(r.model.path == model for r in window.models_page.installed_rows))
    scroll = window.models_page.scroll_area
    for width in (1180, 900, 760):
        window.resize(width, 700)
        QApplication.processEvents()
        viewport = scroll.viewport().width()
        assert scroll.widget().width() <= viewport, (width, scroll.widget().width(), viewport)
        assert scroll.horizontalScrollBar().maximum() == 0
