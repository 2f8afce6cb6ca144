"""The app's look: stylesheet and icon from the ``assets`` package."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from PySide6.QtGui import QIcon, QPixmap


def stylesheet() -> str:
    return resources.files("assets").joinpath("style.qss").read_text(encoding="utf-8")


# Sizes rendered from assets/footnote.svg by packaging/make_icons.py: the window
# manager, taskbar and Alt+Tab each pick the nearest, so nothing is scaled at runtime.
ICON_SIZES_PX = (16, 24, 32, 48, 64, 128, 256, 512)


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    icon = QIcon()
    for size in ICON_SIZES_PX:
        data = resources.files("assets").joinpath(f"footnote-{size}.png").read_bytes()
        pixmap = QPixmap()
        pixmap.loadFromData(data, "PNG")
        icon.addPixmap(pixmap)
    return icon
