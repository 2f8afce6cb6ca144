"""Search conversations in the real window: Ctrl+K opens the box, typing
finds the messages, the arrows choose one, Enter opens its conversation
scrolled to that message (on its branch, when another version is shown)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from app.main_window import MainWindow
from app.widgets.search_popup import SearchPopup, highlighted_html
from engine.history import ConversationStore

FILLER = "A paragraph about something else entirely, long enough to take some room. " * 4


def fill(store: ConversationStore) -> tuple[int, int, int]:
    """A long conversation with the wanted answer in its middle, and another
    conversation that matches too. Returns (garden id, wanted message id, other id)."""
    garden = store.create_conversation("Gardening")
    wanted = 0
    for n in range(12):
        store.add_message(garden.id, "user", f"Question {n}: {FILLER}")
        text = f"Answer {n}: {FILLER}"
        if n == 5:
            text = f"Answer {n}: {FILLER}\nThe heron budget doubled in spring.\n{FILLER}"
        message = store.add_message(garden.id, "assistant", text)
        wanted = message.id if n == 5 else wanted
    other = store.create_conversation("Birds")
    store.add_message(other.id, "user", "Is the heron budget meeting today?")
    return garden.id, wanted, other.id


def shown_in_view(window: MainWindow, message_id: int) -> bool:
    [bubble] = [b for b in window.chat.bubbles() if b.message_id == message_id]
    viewport = window.chat.viewport()
    top = bubble.mapTo(viewport, bubble.rect().topLeft()).y()
    return 0 <= top < viewport.height() and window.chat.verticalScrollBar().value() > 0


def popup(window: MainWindow) -> SearchPopup:
    assert window.search_popup is not None
    return window.search_popup


def test_type_arrow_enter_opens_the_conversation_at_the_message(
    qtbot, window_with, tiny_model
) -> None:
    window = window_with(tiny_model)
    garden, wanted, other = fill(window.store)
    window.conversations_controller.refresh(select=other)
    assert window.conversation_id == other

    [action] = [a for a in window.findChildren(QAction) if a.text() == "&Search Conversations…"]
    shortcuts = {s.toString() for s in action.shortcuts()}
    assert {"Ctrl+K", QKeySequence(QKeySequence.StandardKey.Find).toString()} <= shortcuts
    window.search_conversations()
    box = popup(window)
    qtbot.waitUntil(box.isVisible)
    assert box.query.hasFocus() or box.query.accessibleName() == "Search conversations"

    qtbot.keyClicks(box.query, "walrus")
    qtbot.waitUntil(lambda: "No conversation" in box.status.text(), timeout=5_000)
    assert not box.results.isVisible()
    box.query.clear()
    qtbot.keyClicks(box.query, "heron budg")
    qtbot.waitUntil(lambda: len(box.hits) == 2, timeout=5_000)
    assert box.results.currentRow() == 0
    first = box.current_hit()
    assert first is not None and "heron" in first.line.lower()
    # the arrows move through the hits while the typing stays in the box
    qtbot.keyClick(box.query, Qt.Key.Key_Down)
    qtbot.keyClick(box.query, Qt.Key.Key_Down)  # stays on the last
    assert box.results.currentRow() == 1
    qtbot.keyClick(box.query, Qt.Key.Key_Up)
    assert box.results.currentRow() == 0
    if box.current_hit().message_id != wanted:  # bm25 decides the order
        qtbot.keyClick(box.query, Qt.Key.Key_Down)
    hit = box.current_hit()
    assert hit is not None and hit.message_id == wanted
    assert hit.line == "The heron budget doubled in spring."

    qtbot.keyClick(box.query, Qt.Key.Key_Return)
    assert not box.isVisible()
    assert window.conversation_id == garden
    assert window.conversations.current_id() == garden
    qtbot.waitUntil(lambda: shown_in_view(window, wanted), timeout=5_000)


def test_a_hit_on_another_version_opens_its_branch(qtbot, window_with, tiny_model) -> None:
    window = window_with(tiny_model)
    store = window.store
    conv = store.create_conversation("Versions")
    question = store.add_message(conv.id, "user", "Which bird?")
    old = store.add_message(conv.id, "assistant", "The kingfisher.", parent_id=question.id)
    store.add_message(conv.id, "assistant", "The heron.", parent_id=question.id)  # shown
    window.conversations_controller.refresh(select=conv.id)
    assert [b.text for b in window.chat.bubbles()][-1] == "The heron."

    window.search_conversations()
    box = popup(window)
    qtbot.keyClicks(box.query, "kingfisher")
    qtbot.keyClick(box.query, Qt.Key.Key_Enter)  # at once: Enter searches first
    assert not box.isVisible()
    qtbot.waitUntil(lambda: [b.message_id for b in window.chat.bubbles()][-1] == old.id)


def test_matches_are_marked_and_the_rest_escaped() -> None:
    marked = highlighted_html("The <heron> budget", [(5, 10)])
    assert "&lt;" in marked and ">heron</span>" in marked.replace("&gt;", ">")
