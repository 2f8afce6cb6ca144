"""The app's look: stylesheet and icon from the ``assets`` package."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from PySide6.QtGui import QIcon, QPixmap


def stylesheet() -> str:
    return resources.files("assets").joinpath("style.qss").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    data = resources.files("assets").joinpath("footnote.svg").read_bytes()
    pixmap = QPixmap()
    pixmap.loadFromData(data, "SVG")
    return QIcon(pixmap)
