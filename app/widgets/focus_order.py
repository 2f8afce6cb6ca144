"""The Tab order of the chat page, kept in reading order as messages come.

Qt appends a widget created after the window to the end of the window's Tab
chain, so an answer's citations, sources and Copy button would come after
Send and the status bar. Before each Tab press the main window puts them
back where a reader expects them: the conversation list, then the messages
top to bottom, then the message box and its buttons.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QWidget


def tab_stops(container: QWidget) -> list[QWidget]:
    """The widgets under ``container`` that Tab can reach, in reading order
    (top to bottom, then left to right)."""
    found = [
        w
        for w in container.findChildren(QWidget)
        if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isVisibleTo(container)
    ]

    def position(widget: QWidget) -> tuple[int, int]:
        point = widget.mapTo(container, QPoint(0, 0))
        return (point.y(), point.x())

    return sorted(found, key=position)


def chain(widgets: Iterable[QWidget]) -> None:
    """Make Tab go through ``widgets`` in this order."""
    previous: QWidget | None = None
    for widget in widgets:
        if previous is not None:
            QWidget.setTabOrder(previous, widget)
        previous = widget


def order_chat_page(
    before: Sequence[QWidget],
    messages: QWidget,
    after: Sequence[QWidget],
    *,
    last_known: list[QWidget],
) -> None:
    """``before`` (New chat, the conversation list, the banner's buttons),
    the messages' tab stops, then ``after`` (the message box, its buttons).
    ``last_known`` is the messages' order last time, updated in place: nothing
    is re-chained when it did not change (a Tab press then costs one walk of
    the chat's widgets)."""
    stops = tab_stops(messages)
    if stops == last_known:
        return
    last_known[:] = stops
    chain([*before, *stops, *after])
