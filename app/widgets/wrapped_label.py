"""A word-wrapped label as tall as its text at the width it really has
(the chat's message text: ``app.widgets.chat_view``)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget


class WrappedLabel(QLabel):
    """A word-wrapped label as tall as its text at the width it really has.

    QLabel's own size hints guess a width for wrapped text; in the chat's
    scroll area that guess set the column's minimum height, and a long
    answer ended in hundreds of pixels of blank space below it. Its hints
    are also recomputed (a full rich-text layout) on every layout pass: with
    a streaming answer's many labels that made each tick cost the whole
    answer, so they are cached until the text or the font changes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._hint_cache: dict[tuple[str, int], int] = {}

    def setText(self, text: str) -> None:
        self._hint_cache.clear()
        super().setText(text)
        # A text with links ([n] citations) takes keyboard focus: Tab walks
        # its links and Enter opens one. Plain paragraphs stay out of the Tab order.
        flags = self.textInteractionFlags()
        keyboard = Qt.TextInteractionFlag.LinksAccessibleByKeyboard
        if flags & Qt.TextInteractionFlag.LinksAccessibleByMouse:
            has_links = "<a " in text
            if has_links != bool(flags & keyboard):
                self.setTextInteractionFlags(flags | keyboard if has_links else flags & ~keyboard)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._hint_cache.clear()
        super().changeEvent(event)

    def _cached(self, key: tuple[str, int], compute: Callable[[], int]) -> int:
        value = self._hint_cache.get(key)
        if value is None:
            value = self._hint_cache[key] = compute()
        return value

    def heightForWidth(self, width: int) -> int:
        return self._cached(
            ("height", width), lambda: super(WrappedLabel, self).heightForWidth(width)
        )

    def minimumSizeHint(self) -> QSize:
        width = self._cached(
            ("min-width", 0), lambda: super(WrappedLabel, self).minimumSizeHint().width()
        )
        if self.wordWrap() and self.width() > 0:
            return QSize(width, self.heightForWidth(self.width()))
        return QSize(
            width,
            self._cached(
                ("min-height", 0), lambda: super(WrappedLabel, self).minimumSizeHint().height()
            ),
        )

    def sizeHint(self) -> QSize:
        width = self._cached(("width", 0), lambda: super(WrappedLabel, self).sizeHint().width())
        if self.wordWrap() and self.width() > 0:
            return QSize(width, self.heightForWidth(self.width()))
        return QSize(
            width,
            self._cached(("height-hint", 0), lambda: super(WrappedLabel, self).sizeHint().height()),
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self.updateGeometry()  # a new width means a new height
