"""Edit a collection's exclude patterns: the user's own, one per line, in
``.gitignore`` style, with the defaults that always apply shown beside them."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from retrieval.discovery import DEFAULT_EXCLUDES

HELP_TEXT = (
    "One pattern per line, as in a .gitignore file: <code>drafts/</code> leaves out every "
    "folder named drafts, <code>/drafts/</code> only the one at the top, <code>*.log</code> "
    "every log file, <code>!keep.log</code> brings one back. Files already indexed that a "
    "new pattern leaves out are removed from the index."
)


class ExcludesDialog(QDialog):
    def __init__(self, collection: str, patterns: Sequence[str], parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Excludes for “{collection}”")
        self.resize(620, 420)
        layout = QVBoxLayout(self)
        intro = QLabel(HELP_TEXT)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        columns = QHBoxLayout()
        own = QVBoxLayout()
        own.addWidget(QLabel("<b>Your patterns</b>"))
        self.editor = QPlainTextEdit("\n".join(patterns))
        self.editor.setPlaceholderText("drafts/\n*.log")
        own.addWidget(self.editor)
        columns.addLayout(own, 3)
        defaults = QVBoxLayout()
        defaults.addWidget(QLabel("<b>Always left out</b>"))
        shown = QPlainTextEdit("\n".join(DEFAULT_EXCLUDES))
        shown.setReadOnly(True)
        shown.setToolTip("Hidden files and folders, version control, build outputs, temp files")
        defaults.addWidget(shown)
        columns.addLayout(defaults, 2)
        layout.addLayout(columns)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def patterns(self) -> list[str]:
        return [line.strip() for line in self.editor.toPlainText().splitlines() if line.strip()]
