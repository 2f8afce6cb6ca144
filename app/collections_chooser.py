"""The composer's documents button: which collections this conversation
answers from (all of them unless the user narrows it). Hidden while there
are no collections, since then there is nothing to choose."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

ALL_TEXT = "All documents"
NONE_TEXT = "No documents"


class CollectionsChooser(QToolButton):
    # None: every collection (also ones added later); a tuple: only these.
    choice_changed = Signal(object)

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
        self._rebuild()

    @property
    def chosen(self) -> tuple[str, ...] | None:
        return self._chosen

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
        self.setText(text)
        self.setToolTip(
            "Which document collections this conversation answers from. "
            "Documents never leave this computer."
        )
