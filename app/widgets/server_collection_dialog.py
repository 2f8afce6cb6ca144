"""Add a server collection…: the address of a Chroma server, the collection's
name there, the name it gets here, where this computer sees the server's
files (so citations open them), and whether to keep an offline copy here.
It only asks and checks the form; the controller asks the server.

``PathMapDialog`` edits the path mapping of a collection already added."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtWidgets import (
    QCheckBox,
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
    "server and is written to the privacy ledger. Nothing of the collection is copied here, "
    "unless you ask for an offline copy."
)
OFFLINE_TEXT = "Keep an offline copy on this computer"
OFFLINE_HELP = (
    "The collection's passages and their vectors are copied here (no file is read again) "
    "and refreshed when the server changes; when the server cannot be reached, Footnote "
    "answers from the copy and says from when it is. Turn it off to delete the copy."
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
    offline_copy: bool = False
    # The server's access token ("" if it wants none); never in a repr or a log.
    token: str = field(default="", repr=False)


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
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("if the server wants one; kept in the system keyring")
        self.token.setAccessibleName("Access token")
        form.addRow("Access token", self.token)
        layout.addLayout(form)
        map_help = QLabel(MAP_HELP)
        map_help.setWordWrap(True)
        layout.addWidget(map_help)
        self.path_map = _path_map_editor()
        layout.addWidget(self.path_map)
        self.offline_copy = QCheckBox(OFFLINE_TEXT)
        self.offline_copy.setToolTip(OFFLINE_HELP)
        self.offline_copy.setAccessibleDescription(OFFLINE_HELP)
        layout.addWidget(self.offline_copy)
        self.error = _error_label()
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
        return ServerCollectionForm(
            url,
            remote,
            self.local_name.text().strip() or remote,
            _typed_map(self.path_map),
            self.offline_copy.isChecked(),
            self.token.text().strip(),
        )

    def accept(self) -> None:
        if _checked(self.form, self.error):
            super().accept()


class PathMapDialog(QDialog):
    """Edit path mapping…: where this computer sees a server collection's files."""

    def __init__(self, name: str, path_map: PathMap, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pathMapDialog")
        self.setWindowTitle(f"Path mapping of “{name}”")
        self.resize(520, 300)
        layout = QVBoxLayout(self)
        help_text = QLabel(MAP_HELP)
        help_text.setWordWrap(True)
        layout.addWidget(help_text)
        self.path_map = _path_map_editor()
        self.path_map.setPlainText("".join(f"{server}={local}\n" for server, local in path_map))
        layout.addWidget(self.path_map)
        self.error = _error_label()
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def mapping(self) -> PathMap:
        """What was typed; raises ``RetrievalError`` with the sentence to show."""
        return _typed_map(self.path_map)

    def accept(self) -> None:
        if _checked(self.mapping, self.error):
            super().accept()


def _error_label() -> QLabel:
    """Where a dialog says what is wrong with what was typed (hidden until then)."""
    label = QLabel()
    label.setObjectName("dialogError")
    label.setWordWrap(True)
    label.hide()
    return label


def _checked(read: Callable[[], object], error: QLabel) -> bool:
    """Whether what was typed reads; if not, its sentence is shown in ``error``."""
    try:
        read()
    except RetrievalError as exc:
        error.setText(exc.message)
        error.show()
        return False
    return True


def _path_map_editor() -> QPlainTextEdit:
    editor = QPlainTextEdit()
    editor.setPlaceholderText("/srv/share=/Volumes/share")
    editor.setAccessibleName("Path mapping")
    editor.setTabChangesFocus(True)
    return editor


def _typed_map(editor: QPlainTextEdit) -> PathMap:
    lines = [line for line in editor.toPlainText().splitlines() if line.strip()]
    return parse_path_map(lines)
