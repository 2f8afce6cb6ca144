"""The composer's globe: whether this conversation may search the web.

A tool button with a menu (Off / Auto / Always). Its tooltip says exactly
what leaves the computer in each mode, and its icon is tinted while web
search is on, so the user can tell at a glance whether a question stays
local. The icon is assets/globe.svg, recoloured here (one drawing, two states).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from PySide6.QtCore import QByteArray, QSize, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from retrieval.web.need_search import WebMode

ICON_SIZE_PX = 20
OFF_COLOR = "#8a919c"  # the footer grey of assets/style.qss
ON_COLOR = "#3b63f0"  # the primary blue

MODE_LABELS = {
    WebMode.OFF: "Off: answer from this computer only",
    WebMode.AUTO: "Auto: search when your documents do not answer",
    WebMode.ALWAYS: "Always: search the web for every question",
}

_WHAT_LEAVES = (
    "What leaves this computer: a short search query Phi-3 writes from your question (never "
    "your documents or the conversation) goes to the search engine, and the top pages are "
    "downloaded. Every query and address is listed in View → Privacy Ledger."
)
TOOLTIPS = {
    WebMode.OFF: "Web search is off. Nothing leaves this computer.",
    WebMode.AUTO: "Web search: Auto. Searches only when your documents do not answer. "
    + _WHAT_LEAVES,
    WebMode.ALWAYS: "Web search: Always. " + _WHAT_LEAVES,
}


@lru_cache(maxsize=4)
def globe_icon(color: str) -> QIcon:
    svg = resources.files("assets").joinpath("globe.svg").read_text(encoding="utf-8")
    renderer = QSvgRenderer(QByteArray(svg.replace("currentColor", color).encode("utf-8")))
    icon = QIcon()
    for scale in (1, 2):  # crisp on high-DPI screens too
        pixmap = QPixmap(ICON_SIZE_PX * scale, ICON_SIZE_PX * scale)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        renderer.render(painter)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


class WebToggle(QToolButton):
    mode_chosen = Signal(object)  # WebMode: the user picked it (not set_mode)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("webToggle")
        self.setAutoRaise(True)
        self.setIconSize(QSize(ICON_SIZE_PX, ICON_SIZE_PX))
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setAccessibleName("Web search")
        menu = QMenu(self)
        group = QActionGroup(self)
        self.actions_by_mode: dict[WebMode, QAction] = {}
        for mode, label in MODE_LABELS.items():
            action = QAction(label, self, checkable=True)
            action.setData(mode.value)
            group.addAction(action)
            menu.addAction(action)
            action.triggered.connect(lambda _checked=False, m=mode: self._choose(m))
            self.actions_by_mode[mode] = action
        self.setMenu(menu)
        self._mode = WebMode.OFF
        self.set_mode(WebMode.OFF)

    @property
    def mode(self) -> WebMode:
        return self._mode

    def set_mode(self, mode: WebMode) -> None:
        """Show ``mode`` (a conversation was opened); emits nothing."""
        self._mode = mode
        self.actions_by_mode[mode].setChecked(True)
        self.setIcon(globe_icon(OFF_COLOR if mode is WebMode.OFF else ON_COLOR))
        self.setText("" if mode is WebMode.OFF else mode.value.capitalize())
        self.setToolButtonStyle(
            Qt.ToolButtonStyle.ToolButtonIconOnly
            if mode is WebMode.OFF
            else Qt.ToolButtonStyle.ToolButtonTextBesideIcon
        )
        self.setToolTip(TOOLTIPS[mode])

    def choose(self, mode: WebMode) -> None:
        """As if the user picked ``mode`` in the menu (tests, shortcuts)."""
        self.actions_by_mode[mode].trigger()

    def _choose(self, mode: WebMode) -> None:
        self.set_mode(mode)
        self.mode_chosen.emit(mode)
