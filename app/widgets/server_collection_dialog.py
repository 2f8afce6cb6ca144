"""Add a server collection…: the address of a Chroma server, the collection's
name there, the name it gets here, and where this computer sees the
server's files (so citations open them). It only asks and checks the form;
the controller asks the server."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from retrieval.chroma_server import normalized_url
from retrieval.errors import RetrievalError
from retrieval.server_collections import PathMap, parse_path_map

INTRO_TEXT = (
    "A collection your team indexed on a Chroma server (<code>chroma run</code>, or "
    "<code>python -m app index add FOLDER --server URL</code>). Footnote searches it like "
    "your own folders; each question (its words and its meaning as numbers) goes to that "
    "server and is written to the privacy ledger. Nothing of the collection is copied here."
)
MAP_HELP = (
    "Where this computer sees the server's files, one per line as "
    "SERVER_PREFIX=LOCAL_PREFIX (for example /srv/share=/Volumes/share). Without it, "
    "a citation opens the file only if the path is the same here; otherwise the passage is shown."
)


@dataclass(frozen=True)
class ServerCollectionForm:
    url: str
    remote_name: str
    name: str  # here (the remote name when left empty)
    path_map: PathMap


class ServerCollectionDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("serverCollectionDialog")
        self.setWindowTitle("Add a server collection")
        self.resize(560, 420)
        layout = QVBoxLayout(self)
        intro = QLabel(INTRO_TEXT)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://team-server:8000")
        self.url.setAccessibleName("Server address")
        form.addRow("Server address", self.url)
        self.remote_name = QLineEdit()
        self.remote_name.setPlaceholderText("team-docs")
        self.remote_name.setAccessibleName("Collection on the server")
        form.addRow("Collection on the server", self.remote_name)
        self.local_name = QLineEdit()
        self.local_name.setPlaceholderText("the same")
        self.local_name.setAccessibleName("Name here")
        form.addRow("Name here", self.local_name)
        layout.addLayout(form)
        map_help = QLabel(MAP_HELP)
        map_help.setWordWrap(True)
        layout.addWidget(map_help)
        self.path_map = QPlainTextEdit()
        self.path_map.setPlaceholderText("/srv/share=/Volumes/share")
        self.path_map.setAccessibleName("Path mapping")
        layout.addWidget(self.path_map)
        self.error = QLabel()
        self.error.setObjectName("dialogError")
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def form(self) -> ServerCollectionForm:
        """What was typed, checked; raises ``RetrievalError`` with the sentence to show."""
        url = normalized_url(self.url.text())
        remote = self.remote_name.text().strip()
        if not remote:
            raise RetrievalError("Name the collection on the server (as it was indexed).")
        lines = [line for line in self.path_map.toPlainText().splitlines() if line.strip()]
        path_map = parse_path_map(lines)
        return ServerCollectionForm(url, remote, self.local_name.text().strip() or remote, path_map)

    def accept(self) -> None:
        try:
            self.form()
        except RetrievalError as exc:
            self.error.setText(exc.message)
            self.error.show()
            return
        super().accept()
