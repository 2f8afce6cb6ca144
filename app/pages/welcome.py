"""The first-run page, shown while no model is ready: open or drop a GGUF."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.style.theme import app_icon


class WelcomePage(QWidget):
    open_requested = Signal()
    recent_requested = Signal(str)
    download_requested = Signal()
    browse_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        layout = QVBoxLayout(self)
        layout.addStretch(2)

        card = QFrame()
        card.setObjectName("welcomeCard")
        # A fixed width lets word-wrapped labels compute their real height
        # (with only a maximum width Qt under-sizes them and clips the last line).
        card.setFixedWidth(480)
        inner = QVBoxLayout(card)
        inner.setContentsMargins(36, 32, 36, 32)
        inner.setSpacing(12)

        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(64, 64))
        logo.setFixedHeight(72)
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        inner.addWidget(logo)
        title = QLabel("Welcome to Footnote")
        title.setObjectName("welcomeTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        inner.addWidget(title)
        subtitle = QLabel(
            "Chat with Phi-3 privately: the model runs on this computer and nothing you "
            "type leaves it."
        )
        subtitle.setObjectName("welcomeSubtitle")
        subtitle.setWordWrap(True)
        subtitle.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        inner.addWidget(subtitle)

        self.download_button = QPushButton("Download a model")
        self.download_button.setObjectName("primaryButton")
        self.download_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.download_button.clicked.connect(self.download_requested)
        inner.addSpacing(8)
        inner.addWidget(self.download_button, 0, Qt.AlignmentFlag.AlignHCenter)

        row = QHBoxLayout()
        row.addStretch(1)
        self.open_button = QPushButton("Open a GGUF file…")
        self.open_button.setObjectName("secondaryButton")
        self.open_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.open_button.clicked.connect(self.open_requested)
        row.addWidget(self.open_button)
        browse = QPushButton("Other models…")
        browse.setObjectName("secondaryButton")
        browse.setCursor(Qt.CursorShape.PointingHandCursor)
        browse.clicked.connect(self.browse_requested)
        row.addWidget(browse)
        row.addStretch(1)
        inner.addLayout(row)

        hint = QLabel(
            "or drop a <b>.gguf</b> file anywhere on this window.<br>"
            "Downloads are checked against their published checksum."
        )
        hint.setObjectName("welcomeHint")
        hint.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        hint.setWordWrap(True)
        inner.addWidget(hint)

        self.status = QLabel()
        self.status.setObjectName("welcomeStatus")
        self.status.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.status.setWordWrap(True)
        self.status.hide()
        inner.addWidget(self.status)

        self.recent_box = QVBoxLayout()
        inner.addLayout(self.recent_box)

        layout.addWidget(card, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(3)

    def offer_download(self, name: str, size_text: str) -> None:
        self.download_button.setText(f"Download {name} ({size_text})")

    def set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def set_recent(self, paths: list[str]) -> None:
        while self.recent_box.count():
            item = self.recent_box.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        existing = [p for p in paths if Path(p).is_file()][:3]
        if not existing:
            return
        label = QLabel("Recent models")
        label.setObjectName("welcomeHint")
        label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.recent_box.addWidget(label)
        for path in existing:
            button = QPushButton(Path(path).name)
            button.setObjectName("linkButton")
            button.setToolTip(path)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _=False, p=path: self.recent_requested.emit(p))
            self.recent_box.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
