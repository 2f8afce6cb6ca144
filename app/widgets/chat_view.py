"""The conversation: a scrolling column of message bubbles.

While an answer streams, tokens are appended to a buffer and only the
streaming bubble is re-rendered, on a ~50 ms timer, and within it only the
Markdown block still being written (``app.widgets.streaming_markdown``): finished
blocks become labels of their own that are laid out once. So a tick costs
the size of the last paragraph, not of the answer, and a 1,500-token
answer streams as smoothly at its end as at its start (``bench/ui_stream.py``).
A tick that took T waits 2T before the next, so even a giant paragraph being
written leaves the window two thirds of its time. A long finished answer is
laid out in pieces, a few per event-loop turn (``streaming_markdown.
display_pieces``), instead of one label laid out for seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from PySide6.QtCore import QPoint, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QCursor,
    QDesktopServices,
    QGuiApplication,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.widgets.inline_editor import InlineEditor
from app.widgets.markdown_render import cite_number, markdown_to_html
from app.widgets.sources_panel import SourcesPanel, source_url
from app.widgets.streaming_markdown import (
    LONG_ANSWER_CHARS,
    Piece,
    StreamedHtml,
    StreamingMarkdown,
    display_pieces,
)
from app.widgets.wrapped_label import WrappedLabel
from engine.context import Passage

RENDER_INTERVAL_MS = 50
# The streaming render takes at most about a third of the GUI thread's time:
# after a tick that took T, the next waits at least 2T (a growing giant
# paragraph costs its size every tick; input and painting still get through).
RENDER_IDLE_FACTOR = 2
PIECE_BUDGET_S = 0.03  # a long answer's pieces laid out per event-loop turn
TYPING_INDICATOR = "●  ●  ●"
MAX_USER_BUBBLE_FRACTION = 0.78
CONTENT_MAX_WIDTH_PX = 860
# Space kept above a message scrolled to (a search hit opened).
SCROLL_TO_MARGIN_PX = 16
# Links in answers the system may open: the model's text (and web pages it
# echoes) must not launch file:, javascript: or custom-protocol handlers.
OPENABLE_LINK_SCHEMES = frozenset({"http", "https", "mailto"})


class MessageBubble(QFrame):
    """One message. Users' in a tinted bubble on the right, answers full width.

    A saved message (``message_id``) has its actions: an answer can be
    regenerated, a question edited and sent again (inline, in the bubble);
    either one with other versions shows ‹ n/m › to switch between them."""

    regenerate_requested = Signal(int)  # this answer's id
    edit_submitted = Signal(int, str)  # this question's id, the new text
    version_requested = Signal(int)  # the id of the version to show

    def __init__(
        self,
        role: str,
        text: str = "",
        parent: QWidget | None = None,
        *,
        sources: Sequence[Passage] = (),
        message_id: int | None = None,
        versions: Sequence[int] = (),
    ) -> None:
        super().__init__(parent)
        self.role = role
        self._text = text
        self.message_id = message_id
        self.versions: tuple[int, ...] = tuple(versions)
        self._inline: InlineEditor | None = None  # while the question is being edited
        self.editor: QPlainTextEdit | None = None  # its text box
        self._streaming = False
        self._actions_enabled = True
        # The answer's sources, numbered as it cites them; shown in a panel
        # above the footer, and what its cite:N links open.
        self.sources: list[Passage] = list(sources)
        self.sources_panel: SourcesPanel | None = None
        self.setObjectName("userBubble" if role == "user" else "assistantBubble")
        layout = QVBoxLayout(self)
        self._layout = layout
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(6)

        self.author = QLabel("You" if role == "user" else "Footnote")
        self.author.setObjectName("author")
        layout.addWidget(self.author)

        # While streaming: the answer's finished blocks, one label each, above body.
        # A long finished answer: its pieces, likewise.
        self._frozen: list[WrappedLabel] = []
        self._pending: list[Piece] = []  # pieces of a long answer not laid out yet
        self._piece_timer = QTimer(self)
        self._piece_timer.setSingleShot(True)
        self._piece_timer.setInterval(0)
        self._piece_timer.timeout.connect(self._render_pieces)
        self.body = self._text_label()
        layout.addWidget(self.body)

        footer = QHBoxLayout()
        footer.setContentsMargins(0, 0, 0, 0)
        footer.setSpacing(2)
        self.previous_button = _action_button("‹", "Show the previous version")
        self.previous_button.setAccessibleName("Previous version")
        self.previous_button.clicked.connect(lambda: self._step_version(-1))
        self.version_label = QLabel()
        self.version_label.setObjectName("versionLabel")
        self.next_button = _action_button("›", "Show the next version")
        self.next_button.setAccessibleName("Next version")
        self.next_button.clicked.connect(lambda: self._step_version(1))
        for arrow in (self.previous_button, self.next_button):
            arrow.setObjectName("versionArrow")
        self.footer = QLabel()
        self.footer.setObjectName("messageFooter")
        if role == "user":
            footer.addStretch(1)
        for widget in (self.previous_button, self.version_label, self.next_button, self.footer):
            footer.addWidget(widget)
        if role != "user":
            footer.addStretch(1)
        self.edit_button = _action_button("Edit", "Edit this question and send it again")
        self.edit_button.clicked.connect(self.start_editing)
        self.regenerate_button = _action_button(
            "Regenerate", "Write another answer to this question (this one is kept)"
        )
        self.regenerate_button.clicked.connect(self._regenerate)
        self.copy_button = _action_button("Copy", "Copy this message as Markdown")
        self.copy_button.setObjectName("copyButton")
        self.copy_button.clicked.connect(self._copy)
        for button in (self.edit_button, self.regenerate_button, self.copy_button):
            footer.addWidget(button)
        layout.addLayout(footer)
        self._show_sources_panel()
        self.set_text(text)
        self.set_footer("")

    def _text_label(self) -> WrappedLabel:
        label = WrappedLabel()
        label.setObjectName("messageBody")
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        label.setOpenExternalLinks(False)
        label.linkActivated.connect(self.open_link)
        label.linkHovered.connect(self._show_link_target)
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        return label

    @property
    def text(self) -> str:
        return self._text

    def set_sources(self, sources: Sequence[Passage], *, rerender: bool = True) -> None:
        """Show the answer's sources (and make its [n] citations links, unless
        the answer is still streaming: its final render does that)."""
        self.sources = list(sources)
        self._show_sources_panel()
        if rerender and self.role != "user" and self._text:
            self.set_text(self._text)

    def _show_sources_panel(self) -> None:
        if self.sources_panel is not None:
            self._layout.removeWidget(self.sources_panel)
            self.sources_panel.deleteLater()
            self.sources_panel = None
        if self.sources:
            self.sources_panel = SourcesPanel(self.sources)
            # Above the footer (the layout's last item).
            self._layout.insertWidget(self._layout.count() - 1, self.sources_panel)

    def open_link(self, url: str) -> bool:
        """A link in the message was clicked: a citation opens its source; web
        and mail links open in the system's browser/mail app; nothing else."""
        number = cite_number(url)
        if number is not None:
            return self.sources_panel is not None and self.sources_panel.open(number)
        target = QUrl(url)
        if target.scheme().lower() not in OPENABLE_LINK_SCHEMES:
            return False
        return bool(QDesktopServices.openUrl(target))

    def _show_link_target(self, url: str) -> None:
        """Where a link really goes, on hover (the text may say otherwise)."""
        if not url:
            QToolTip.hideText()
            return
        number = cite_number(url)
        if number is not None and 1 <= number <= len(self.sources):
            source = self.sources[number - 1]
            target = source_url(source.kind, source.location)
            where = target.toDisplayString() if target is not None else ""
            QToolTip.showText(QCursor.pos(), f"[{number}] {source.citation}\n{where}".strip())
        else:
            QToolTip.showText(QCursor.pos(), url)

    def show_streamed(self, text: str, update: StreamedHtml) -> None:
        """The answer so far: newly finished blocks get their own label (laid
        out once); only the block still being written is re-rendered."""
        self._text = text
        for html_block in update.frozen:
            # One label per block: set once, its size hints cached, so a layout
            # pass over a long answer's labels costs microseconds each.
            # (Merging blocks into fewer labels measured slower: each merge
            # lays the grown label out again.)
            label = self._text_label()
            label.setText(html_block)
            self._layout.insertWidget(self._layout.indexOf(self.body), label)
            self._frozen.append(label)
        if update.tail or self._frozen:
            self.body.setText(update.tail)
            self.body.setVisible(bool(update.tail))
        else:
            self.body.setText(f'<span style="color:#9aa1ab;">{TYPING_INDICATOR}</span>')
        self.copy_button.setVisible(False)

    def set_text(self, text: str, *, streaming: bool = False) -> None:
        self._text = text
        for label in self._frozen:  # one label again, so a selection spans the answer
            self._layout.removeWidget(label)
            label.deleteLater()
        self._frozen = []
        self._pending = []
        self.body.show()
        if self.role != "user" and not streaming and len(text) > LONG_ANSWER_CHARS:
            # Too long for one label: pieces, laid out a few per event-loop turn.
            self.body.setText("")
            self.body.hide()
            self._pending = display_pieces(text)
            self._piece_timer.start()
        elif streaming and not text:
            self.body.setText(f'<span style="color:#9aa1ab;">{TYPING_INDICATOR}</span>')
        elif self.role == "user":
            # The user's words are shown as typed: no Markdown surprises.
            import html

            self.body.setText(html.escape(text).replace("\n", "<br>"))
        else:
            self.body.setText(markdown_to_html(text, citations=len(self.sources)))
        # Copy is for answers; the user's own words are a selection away.
        self.copy_button.setVisible(self.role != "user" and bool(text) and not streaming)
        self._streaming = streaming
        self._show_actions()

    @property
    def rendering(self) -> bool:
        """A long answer's pieces are still being laid out."""
        return bool(self._pending)

    def _render_pieces(self) -> None:
        """Lay out pending pieces for up to ``PIECE_BUDGET_S``, at least one,
        then give the event loop back (input, painting) and continue."""
        began = time.perf_counter()
        while self._pending:
            piece = self._pending.pop(0)
            label = self._text_label()
            label.setText(piece.to_html(len(self.sources)))
            # Lay it out now, inside the budget: left to the next layout pass,
            # every label added this turn would be laid out there at once.
            label.minimumSizeHint()
            label.sizeHint()
            width = self._layout.contentsRect().width()
            if width > 0:
                label.resize(width, label.heightForWidth(width))
            self._layout.insertWidget(self._layout.indexOf(self.body), label)
            self._frozen.append(label)
            if time.perf_counter() - began >= PIECE_BUDGET_S:
                break
        if self._pending:
            self._piece_timer.start()

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

    # ----------------------------------------------------------------- versions, edit

    def set_saved(self, message_id: int, versions: Sequence[int]) -> None:
        """The message as stored: its id and its versions (oldest first)."""
        self.message_id = message_id
        self.versions = tuple(versions)
        self._show_actions()

    def set_actions_enabled(self, enabled: bool) -> None:
        """Off while an answer is being written: one turn at a time."""
        self._actions_enabled = enabled
        if self._inline is not None:
            self._inline.set_send_enabled(enabled)
        self._show_actions()

    @property
    def version(self) -> int:
        """Which version is shown, from 1."""
        if self.message_id in self.versions:
            return self.versions.index(self.message_id) + 1
        return 1

    def _show_actions(self) -> None:
        saved = self.message_id is not None and not self._streaming
        editing = self._inline is not None
        several = saved and len(self.versions) > 1 and not editing
        for widget in (self.previous_button, self.version_label, self.next_button):
            widget.setVisible(several)
        if several:
            n, m = self.version, len(self.versions)
            self.version_label.setText(f"{n}/{m}")
            self.version_label.setAccessibleName(f"Version {n} of {m}")
            self.previous_button.setEnabled(self._actions_enabled and n > 1)
            self.next_button.setEnabled(self._actions_enabled and n < m)
        self.edit_button.setVisible(saved and self.role == "user" and not editing)
        self.regenerate_button.setVisible(saved and self.role != "user")
        for button in (self.edit_button, self.regenerate_button):
            button.setEnabled(self._actions_enabled)

    def _step_version(self, step: int) -> None:
        index = self.version - 1 + step
        if self._actions_enabled and 0 <= index < len(self.versions):
            self.version_requested.emit(self.versions[index])

    def _regenerate(self) -> None:
        if self._actions_enabled and self.message_id is not None:
            self.regenerate_requested.emit(self.message_id)

    def start_editing(self) -> None:
        """The question in an editor in place of its text (``app.widgets.inline_editor``):
        sent as a new version, the conversation branches there."""
        if self.role != "user" or self.message_id is None or self._inline is not None:
            return
        margins = self._layout.contentsMargins()
        room = self.maximumWidth() - margins.left() - margins.right()
        inline = InlineEditor(self._text, max(room, self.body.width()))
        inline.set_send_enabled(self._actions_enabled)
        inline.submitted.connect(self._submit_edit)
        inline.cancelled.connect(self.cancel_editing)
        self._inline = inline
        self.editor = inline.edit
        self.body.hide()
        self._layout.insertWidget(self._layout.indexOf(self.body) + 1, inline)
        self.setMaximumWidth(16777215)
        self._show_actions()
        inline.start()

    def cancel_editing(self) -> None:
        if self._inline is None:
            return
        self._layout.removeWidget(self._inline)
        self._inline.deleteLater()
        self._inline = None
        self.editor = None
        self.body.show()
        self._show_actions()

    def submit_edit(self) -> None:
        if self._inline is not None:
            self._inline.submit()

    def _submit_edit(self, text: str) -> None:
        message_id = self.message_id
        if message_id is None or not self._actions_enabled:
            return
        self.cancel_editing()
        self.edit_submitted.emit(message_id, text)

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self._text)
        self.copy_button.setText("Copied")
        QTimer.singleShot(1500, lambda: self.copy_button.setText("Copy"))


def _action_button(text: str, tooltip: str) -> QPushButton:
    """A small text button under a message (Copy, Regenerate, Edit, ‹ ›)."""
    button = QPushButton(text)
    button.setObjectName("messageAction")
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    button.setToolTip(tooltip)
    button.setAccessibleName(text)
    button.setAccessibleDescription(tooltip)
    return button


class ChatView(QScrollArea):
    """Shows one conversation and the answer streaming into it."""

    streaming_rendered = Signal()  # for tests: the streaming bubble was re-rendered
    regenerate_requested = Signal(int)  # an answer's id
    edit_submitted = Signal(int, str)  # a question's id, its new text
    version_requested = Signal(int)  # a message id: show the branch through it

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
        self._markdown = StreamingMarkdown()
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(RENDER_INTERVAL_MS)
        self._timer.timeout.connect(self._render_streaming)
        self.verticalScrollBar().rangeChanged.connect(self._follow_bottom)
        self._stick_to_bottom = True
        self._pinned: MessageBubble | None = None  # scroll_to_message
        self.verticalScrollBar().valueChanged.connect(self._remember_position)
        self._actions_enabled = True

    # ----------------------------------------------------------------- content

    def clear(self) -> None:
        self._stop_streaming()
        while self._layout.count() > 1:
            item = self._layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self._stick_to_bottom = True
        self._pinned = None

    def bubbles(self) -> list[MessageBubble]:
        found = []
        for i in range(self._layout.count()):
            item = self._layout.itemAt(i)
            widget = item.widget() if item is not None else None
            row = widget.findChild(MessageBubble) if widget is not None else None
            if row is not None:
                found.append(row)
        return found

    def remove_from(self, index: int) -> None:
        """Remove the messages from the ``index``-th on (a version switched:
        what follows it is shown again), keeping the view where it is."""
        self._stop_streaming()
        self._pinned = None
        rows = [b.parentWidget() for b in self.bubbles()[index:]]
        for row in rows:
            if row is not None:
                self._layout.removeWidget(row)
                row.deleteLater()

    def set_actions_enabled(self, enabled: bool) -> None:
        """Regenerate, Edit and the version arrows: off while an answer is written."""
        self._actions_enabled = enabled
        for bubble in self.bubbles():
            bubble.set_actions_enabled(enabled)

    def add_message(
        self,
        role: str,
        text: str,
        footer: str = "",
        sources: Sequence[Passage] = (),
        *,
        message_id: int | None = None,
        versions: Sequence[int] = (),
        follow: bool = True,
    ) -> MessageBubble:
        """``follow``: scroll to the bottom (False: the view stays where it is)."""
        bubble = MessageBubble(
            role, text, sources=sources, message_id=message_id, versions=versions
        )
        bubble.set_footer(footer)
        bubble.set_actions_enabled(self._actions_enabled)
        bubble.regenerate_requested.connect(self.regenerate_requested)
        bubble.edit_submitted.connect(self.edit_submitted)
        bubble.version_requested.connect(self.version_requested)
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
        if follow:
            self._stick_to_bottom = True
            self._pinned = None
        return bubble

    # ----------------------------------------------------------------- streaming

    def begin_answer(self) -> MessageBubble:
        self._stop_streaming()
        self._streaming = self.add_message("assistant", "")
        self._streaming.set_text("", streaming=True)
        self._buffer = []
        self._markdown.reset()
        self._timer.setInterval(RENDER_INTERVAL_MS)
        self._timer.start()
        return self._streaming

    def append_answer(self, text: str) -> None:
        if self._streaming is None:
            return
        self._buffer.append(text)
        self._dirty = True

    def set_streaming_sources(self, sources: Sequence[Passage]) -> None:
        """The answer being written was given these sources (before its first word)."""
        if self._streaming is not None:
            self._streaming.set_sources(sources, rerender=False)

    def end_answer(
        self,
        final_text: str,
        footer: str = "",
        sources: Sequence[Passage] | None = None,
        *,
        message_id: int | None = None,
        versions: Sequence[int] = (),
    ) -> None:
        """``message_id``/``versions``: the answer as saved (its actions)."""
        bubble = self._streaming
        self._stop_streaming()
        if bubble is None:
            return
        if sources is not None:
            bubble.set_sources(sources, rerender=False)
        if final_text:
            bubble.set_text(final_text)
            bubble.set_footer(footer)
            if message_id is not None:
                bubble.set_saved(message_id, versions or (message_id,))
        else:  # nothing was written (stopped at once, or failed): no empty bubble
            row = bubble.parentWidget()
            if row is not None:
                self._layout.removeWidget(row)
                row.deleteLater()

    @property
    def streaming_text(self) -> str:
        return "".join(self._buffer)

    @property
    def streaming_tail_chars(self) -> int:
        """How much of the answer being written each tick re-renders: its last
        Markdown block (the rest is rendered once). For tests and bench/."""
        return len(self.streaming_text) - self._markdown.frozen_chars

    def _stop_streaming(self) -> None:
        self._timer.stop()
        self._streaming = None
        self._buffer = []
        self._dirty = False

    def _render_streaming(self) -> None:
        if not self._dirty or self._streaming is None:
            return
        self._dirty = False
        began = time.perf_counter()
        text = self.streaming_text
        self._streaming.show_streamed(text, self._markdown.update(text))
        took_ms = (time.perf_counter() - began) * 1000
        self._timer.setInterval(max(RENDER_INTERVAL_MS, int(RENDER_IDLE_FACTOR * took_ms)))
        self.streaming_rendered.emit()

    # ----------------------------------------------------------------- scrolling

    def scroll_to_message(self, message_id: int) -> bool:
        """Bring a saved message to the top of the view (a search hit opened)
        and give it the focus; False if it is not shown."""
        bubble = next((b for b in self.bubbles() if b.message_id == message_id), None)
        if bubble is None:
            return False
        # Pinned until the next message or conversation: rows above it are
        # still being laid out, and each change of height scrolls to it again
        # (where it would otherwise follow the bottom).
        self._pinned = bubble
        self._stick_to_bottom = False
        self._scroll_to_pinned()
        bubble.setFocus(Qt.FocusReason.OtherFocusReason)
        return True

    def _scroll_to_pinned(self) -> None:
        canvas, bubble = self.widget(), self._pinned
        layout = canvas.layout() if canvas is not None else None
        if canvas is None or layout is None or bubble is None:
            return
        layout.activate()
        top = bubble.mapTo(canvas, QPoint(0, 0)).y()
        self.verticalScrollBar().setValue(max(0, top - SCROLL_TO_MARGIN_PX))

    def scroll_to_bottom(self) -> None:
        """Follow the bottom again (a question sent from further up)."""
        self._stick_to_bottom = True
        self._pinned = None
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _remember_position(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._stick_to_bottom = value >= bar.maximum() - 24

    def _follow_bottom(self, _minimum: int, maximum: int) -> None:
        if self._pinned is not None:
            self._scroll_to_pinned()
            return
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
