"""The composer's documents button, beside the globe: whether this
conversation's answers use the user's documents (Off / Auto / Always, like
web search) and which collections (all of them unless the user narrows it).
Hidden while there are no collections, since then there is nothing to choose."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from retrieval.source_decision import SourceMode

ALL_TEXT = "All documents"
NONE_TEXT = "No documents"
OFF_TEXT = "Documents off"
MODE_LABELS = {
    SourceMode.OFF: "Off: never use my documents",
    SourceMode.AUTO: "Auto: use them when they answer the question",
    SourceMode.ALWAYS: "Always: send what the search finds, every question",
}
TOOLTIPS = {
    SourceMode.OFF: "Your documents are not used in this conversation.",
    SourceMode.AUTO: "Documents: Auto. Passages from your documents are sent to the model when "
    "the question asks for information and they bear on it; not for greetings, maths or "
    "rewrites. Documents never leave this computer.",
    SourceMode.ALWAYS: "Documents: Always. The best passages the search finds are sent with "
    "every question. Documents never leave this computer.",
}


class CollectionsChooser(QToolButton):
    # None: every collection (also ones added later); a tuple: only these.
    choice_changed = Signal(object)
    mode_chosen = Signal(object)  # SourceMode: the user picked it (not set_mode)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("collectionsChooser")
        self.setAutoRaise(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setAccessibleName("Documents used for answers")
        self._menu = QMenu(self)
        self.setMenu(self._menu)
        self._names: list[str] = []
        self._chosen: tuple[str, ...] | None = None
        self._mode = SourceMode.AUTO
        self._rebuild()

    @property
    def chosen(self) -> tuple[str, ...] | None:
        return self._chosen

    @property
    def mode(self) -> SourceMode:
        return self._mode

    def set_mode(self, mode: SourceMode) -> None:
        """Show a conversation's documents mode; emits nothing."""
        self._mode = mode
        self._rebuild()

    def choose_mode(self, mode: SourceMode) -> None:
        """As the menu's mode entries do."""
        self._mode = mode
        self._rebuild()
        self.mode_chosen.emit(mode)

    def set_collections(self, names: Sequence[str]) -> None:
        """The collections that exist now (Documents page changed)."""
        self._names = list(names)
        self._rebuild()

    def set_chosen(self, chosen: Sequence[str] | None) -> None:
        """Show a conversation's choice; emits nothing."""
        self._chosen = None if chosen is None else tuple(chosen)
        self._rebuild()

    def effective(self) -> tuple[str, ...] | None:
        """The choice limited to collections that still exist (None: all)."""
        if self._chosen is None:
            return None
        return tuple(n for n in self._chosen if n in self._names)

    def toggle_collection(self, name: str) -> None:
        """Include or leave out one collection (as its menu entry does)."""
        current = list(self._names if self._chosen is None else self.effective() or ())
        if name in current:
            current.remove(name)
        else:
            current.append(name)
        chosen = None if set(current) >= set(self._names) else tuple(current)
        self._chosen = chosen
        self._rebuild()
        self.choice_changed.emit(chosen)

    def choose_all(self) -> None:
        self._chosen = None
        self._rebuild()
        self.choice_changed.emit(None)

    def _rebuild(self) -> None:
        self.setVisible(bool(self._names))
        self._menu.clear()
        self._menu.addSection("Use my documents")
        modes = QActionGroup(self._menu)
        for mode, label in MODE_LABELS.items():
            entry = QAction(label, self._menu, checkable=True)
            entry.setChecked(mode is self._mode)
            entry.setData(mode.value)
            modes.addAction(entry)
            entry.triggered.connect(lambda _checked=False, m=mode: self.choose_mode(m))
            self._menu.addAction(entry)
        self._menu.addSection("From")
        everything = QAction("All collections", self._menu, checkable=True)
        everything.setChecked(self._chosen is None)
        everything.triggered.connect(self.choose_all)
        self._menu.addAction(everything)
        self._menu.addSeparator()
        effective = self.effective()
        for name in self._names:
            action = QAction(name, self._menu, checkable=True)
            action.setChecked(effective is None or name in effective)
            action.triggered.connect(lambda _checked=False, n=name: self.toggle_collection(n))
            self._menu.addAction(action)
        if effective is None:
            text = ALL_TEXT
        elif not effective:
            text = NONE_TEXT
        else:
            text = ", ".join(effective) if len(effective) <= 2 else f"{len(effective)} collections"
        if self._mode is SourceMode.OFF:
            text = OFF_TEXT
        elif effective != ():
            text = f"{self._mode.value.capitalize()} · {text}"
        self.setText(text)
        self.setToolTip(TOOLTIPS[self._mode] + " Choose which collections in this menu.")
