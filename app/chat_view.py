"""The conversation: a scrolling column of message bubbles.

While an answer streams, tokens are appended to a buffer and only the
streaming bubble is re-rendered, on a ~50 ms timer: rendering Markdown on
every token would cost O(n^2) and make long answers stutter.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.markdown_render import markdown_to_html

RENDER_INTERVAL_MS = 50
TYPING_INDICATOR = "●  ●  ●"
MAX_USER_BUBBLE_FRACTION = 0.78
CONTENT_MAX_WIDTH_PX = 860


class MessageBubble(QFrame):
    """One message. Users' in a tinted bubble on the right, answers full width."""

    def __init__(self, role: str, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self._text = text
        self.setObjectName("userBubble" if role == "user" else "assistantBubble")
        layout = QVBoxLayout(self)
        self._layout = layout
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(6)

        self.author = QLabel("You" if role == "user" else "Footnote")
        self.author.setObjectName("author")
        layout.addWidget(self.author)

        self.body = QLabel()
        self.body.setObjectName("messageBody")
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.body.setOpenExternalLinks(False)
        self.body.linkActivated.connect(lambda url: QDesktopServices.openUrl(QUrl(url)))
        self.body.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        layout.addWidget(self.body)

        footer = QHBoxLayout()
        footer.setContentsMargins(0, 0, 0, 0)
        self.footer = QLabel()
        self.footer.setObjectName("messageFooter")
        footer.addWidget(self.footer)
        footer.addStretch(1)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setObjectName("copyButton")
        self.copy_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.copy_button.setToolTip("Copy this message as Markdown")
        self.copy_button.clicked.connect(self._copy)
        footer.addWidget(self.copy_button)
        layout.addLayout(footer)
        self.set_text(text)
        self.set_footer("")

    @property
    def text(self) -> str:
        return self._text

    def set_text(self, text: str, *, streaming: bool = False) -> None:
        self._text = text
        if streaming and not text:
            self.body.setText(f'<span style="color:#9aa1ab;">{TYPING_INDICATOR}</span>')
        elif self.role == "user":
            # The user's words are shown as typed: no Markdown surprises.
            import html

            self.body.setText(html.escape(text).replace("\n", "<br>"))
        else:
            self.body.setText(markdown_to_html(text))
        # Copy is for answers; the user's own words are a selection away.
        self.copy_button.setVisible(self.role != "user" and bool(text) and not streaming)

    def fit_width(self, available_px: int) -> None:
        """Size a user bubble to its text, up to ``available_px``. A word-wrapped
        QLabel otherwise takes a narrow guess and wraps short questions."""
        if self.role != "user":
            return
        metrics = self.body.fontMetrics()
        natural = max(
            (metrics.horizontalAdvance(line) for line in self._text.split("\n")), default=0
        )
        margins = self._layout.contentsMargins()
        cap = max(available_px - margins.left() - margins.right(), 80)
        self.body.setMinimumWidth(min(natural + 8, cap))
        self.setMaximumWidth(available_px)

    def set_footer(self, text: str) -> None:
        self.footer.setText(text)
        self.footer.setVisible(bool(text))

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self._text)
        self.copy_button.setText("Copied")
        QTimer.singleShot(1500, lambda: self.copy_button.setText("Copy"))


class ChatView(QScrollArea):
    """Shows one conversation and the answer streaming into it."""

    streaming_rendered = Signal()  # for tests: the streaming bubble was re-rendered

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatView")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)

        outer = QWidget()
        outer.setObjectName("chatCanvas")
        outer_layout = QHBoxLayout(outer)
        outer_layout.setContentsMargins(24, 20, 24, 20)
        self._column = QWidget()
        self._column.setMaximumWidth(CONTENT_MAX_WIDTH_PX)
        self._layout = QVBoxLayout(self._column)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(14)
        self._layout.addStretch(1)
        outer_layout.addStretch(1)
        outer_layout.addWidget(self._column, 100)
        outer_layout.addStretch(1)
        self.setWidget(outer)

        self._streaming: MessageBubble | None = None
        self._buffer: list[str] = []
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(RENDER_INTERVAL_MS)
        self._timer.timeout.connect(self._render_streaming)
        self.verticalScrollBar().rangeChanged.connect(self._follow_bottom)
        self._stick_to_bottom = True
        self.verticalScrollBar().valueChanged.connect(self._remember_position)

    # ----------------------------------------------------------------- content

    def clear(self) -> None:
        self._stop_streaming()
        while self._layout.count() > 1:
            item = self._layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self._stick_to_bottom = True

    def bubbles(self) -> list[MessageBubble]:
        found = []
        for i in range(self._layout.count()):
            item = self._layout.itemAt(i)
            widget = item.widget() if item is not None else None
            row = widget.findChild(MessageBubble) if widget is not None else None
            if row is not None:
                found.append(row)
        return found

    def add_message(self, role: str, text: str, footer: str = "") -> MessageBubble:
        bubble = MessageBubble(role, text)
        bubble.set_footer(footer)
        row = QWidget()
        row_layout = QHBoxLayout(row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        if role == "user":
            row_layout.addStretch(1)
            row_layout.addWidget(bubble)
            bubble.fit_width(self._user_bubble_width())
        else:
            row_layout.addWidget(bubble, 1)
        self._layout.insertWidget(self._layout.count() - 1, row)
        self._stick_to_bottom = True
        return bubble

    # ----------------------------------------------------------------- streaming

    def begin_answer(self) -> MessageBubble:
        self._stop_streaming()
        self._streaming = self.add_message("assistant", "")
        self._streaming.set_text("", streaming=True)
        self._buffer = []
        self._timer.start()
        return self._streaming

    def append_answer(self, text: str) -> None:
        if self._streaming is None:
            return
        self._buffer.append(text)
        self._dirty = True

    def end_answer(self, final_text: str, footer: str = "") -> None:
        bubble = self._streaming
        self._stop_streaming()
        if bubble is None:
            return
        if final_text:
            bubble.set_text(final_text)
            bubble.set_footer(footer)
        else:  # nothing was written (stopped at once, or failed): no empty bubble
            row = bubble.parentWidget()
            if row is not None:
                self._layout.removeWidget(row)
                row.deleteLater()

    @property
    def streaming_text(self) -> str:
        return "".join(self._buffer)

    def _stop_streaming(self) -> None:
        self._timer.stop()
        self._streaming = None
        self._buffer = []
        self._dirty = False

    def _render_streaming(self) -> None:
        if not self._dirty or self._streaming is None:
            return
        self._dirty = False
        self._streaming.set_text(self.streaming_text, streaming=True)
        self.streaming_rendered.emit()

    # ----------------------------------------------------------------- scrolling

    def _remember_position(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._stick_to_bottom = value >= bar.maximum() - 24

    def _follow_bottom(self, _minimum: int, maximum: int) -> None:
        # Follow the answer as it grows unless the user scrolled up to read.
        if self._stick_to_bottom:
            self.verticalScrollBar().setValue(maximum)

    def _user_bubble_width(self) -> int:
        column = min(self.viewport().width() - 48, CONTENT_MAX_WIDTH_PX)
        return int(max(column, 200) * MAX_USER_BUBBLE_FRACTION)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        width = self._user_bubble_width()
        for bubble in self.bubbles():
            bubble.fit_width(width)

    def sizeHint(self) -> QSize:
        return QSize(640, 480)
