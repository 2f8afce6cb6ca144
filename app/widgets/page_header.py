"""The header every full-window page has (Documents, Privacy Ledger, Models):
"← Back to chat" on the left, the page's own buttons on the right, then the
page title and a one-paragraph introduction. One builder, so the pages look
and behave alike (and a change of style or wording happens once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import SignalInstance
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout

BACK_TEXT = "← Back to chat"


@dataclass(frozen=True)
class PageHeader:
    back: QPushButton
    title: QLabel
    intro: QLabel | None  # None when the page has no introduction


def add_page_header(
    layout: QVBoxLayout,
    title: str,
    back_requested: SignalInstance,
    *,
    actions: Sequence[QPushButton] = (),
    intro: str = "",
) -> PageHeader:
    """Add the header to the top of ``layout``; "Back to chat" emits
    ``back_requested``; ``actions`` sit at the right, in order."""
    row = QHBoxLayout()
    back = QPushButton(BACK_TEXT)
    back.setObjectName("linkButton")
    back.clicked.connect(back_requested)
    row.addWidget(back)
    row.addStretch(1)
    for action in actions:
        row.addWidget(action)
    layout.addLayout(row)

    heading = QLabel(title)
    heading.setObjectName("welcomeTitle")
    layout.addWidget(heading)
    intro_label = None
    if intro:
        intro_label = QLabel(intro)
        intro_label.setObjectName("modelDetail")
        intro_label.setWordWrap(True)
        layout.addWidget(intro_label)
    return PageHeader(back, heading, intro_label)
