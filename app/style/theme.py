"""The app's look: light or dark (or whichever the desktop uses), the
stylesheet and the icon from the ``assets`` package.

A theme is a palette and a stylesheet built from one colour scheme
(``app.style.colors``). Both matter: the stylesheet styles Footnote's own widgets,
and the palette is what Qt's Fusion style paints everything else with
(menus, dialogs, line edits, spin boxes, message boxes). Setting only the
stylesheet's text colour left the desktop's dark palette underneath, and
menus and the Settings dialog came out dark text on dark grey.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import resources

from PySide6.QtCore import QObject, Qt, Signal, SignalInstance
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QIcon, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QMenu, QWidget

from app.style import colors
from app.style.colors import THEME_LABELS, ThemeChoice, parse_choice

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"@([a-z_]+)")
# A window colour darker than this (HSL lightness, 0-255) means the desktop is dark.
DARK_WINDOW_LIGHTNESS = 128


def stylesheet(scheme: Mapping[str, str] | None = None) -> str:
    """assets/style.qss with its ``@name`` colours filled in from ``scheme``
    (default: the one in use). An unknown name raises KeyError: a typo in the
    stylesheet must not silently drop a rule."""
    scheme = scheme or colors.current()
    template = resources.files("assets").joinpath("style.qss").read_text(encoding="utf-8")
    return _TOKEN.sub(lambda match: scheme[match.group(1)], template)


def palette(scheme: Mapping[str, str]) -> QPalette:
    """The Qt palette of a scheme: what Fusion paints menus, dialogs and inputs with."""
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: scheme["bg"],
        QPalette.ColorRole.WindowText: scheme["ink"],
        QPalette.ColorRole.Base: scheme["bg"],
        QPalette.ColorRole.AlternateBase: scheme["alt_row"],
        QPalette.ColorRole.Text: scheme["ink"],
        QPalette.ColorRole.Button: scheme["sidebar"],
        QPalette.ColorRole.ButtonText: scheme["ink"],
        QPalette.ColorRole.BrightText: scheme["problem"],
        QPalette.ColorRole.Highlight: scheme["accent"],
        QPalette.ColorRole.HighlightedText: scheme["on_accent"],
        QPalette.ColorRole.ToolTipBase: scheme["tooltip_bg"],
        QPalette.ColorRole.ToolTipText: scheme["tooltip_ink"],
        QPalette.ColorRole.PlaceholderText: scheme["muted"],
        QPalette.ColorRole.Link: scheme["accent_text"],
        QPalette.ColorRole.LinkVisited: scheme["accent_text"],
        QPalette.ColorRole.Light: scheme["border"],
        QPalette.ColorRole.Midlight: scheme["line"],
        QPalette.ColorRole.Mid: scheme["border"],
        QPalette.ColorRole.Dark: scheme["scroll_hover"],
        QPalette.ColorRole.Shadow: scheme["scroll_hover"],
    }
    for role, value in roles.items():
        pal.setColor(QPalette.ColorGroup.All, role, QColor(value))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(scheme["disabled_ink"]))
    return pal


class _ThemeState(QObject):
    """The user's choice, and the desktop's scheme as it was before Footnote
    replaced the palette (for "Follow the system" where Qt cannot say)."""

    changed = Signal(str)  # the scheme now in use: "light" or "dark"

    def __init__(self) -> None:
        super().__init__()
        self.choice = ThemeChoice.SYSTEM
        self.system_palette_dark: bool | None = None
        self.watching = False


_state: _ThemeState | None = None


def _theme_state() -> _ThemeState:
    global _state
    if _state is None:
        _state = _ThemeState()
    return _state


def theme_changed() -> SignalInstance:
    """Emitted with "light" or "dark" after the theme in use changed."""
    return _theme_state().changed


def system_is_dark() -> bool:
    """The desktop's preference: Qt's colour-scheme hint where the platform
    gives one (GNOME, KDE, macOS, Windows), else whether the palette the
    desktop gave us was dark."""
    scheme = QGuiApplication.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    state = _theme_state()
    if state.system_palette_dark is None:
        window = QGuiApplication.palette().color(QPalette.ColorRole.Window)
        state.system_palette_dark = window.lightness() < DARK_WINDOW_LIGHTNESS
    return state.system_palette_dark


def resolve(choice: ThemeChoice | str) -> str:
    """ "light" or "dark" for a choice."""
    choice = parse_choice(str(choice))
    if choice is ThemeChoice.SYSTEM:
        return "dark" if system_is_dark() else "light"
    return choice.value


def apply_theme(app: QApplication, choice: ThemeChoice | str) -> str:
    """Use ``choice`` for the whole app now (widgets restyle in place); returns
    the scheme in use. Cheap when nothing changes."""
    state = _theme_state()
    if state.system_palette_dark is None:
        system_is_dark()  # remember the desktop's palette before replacing it
    state.choice = parse_choice(str(choice))
    name = resolve(state.choice)
    scheme = colors.SCHEMES[name]
    changed = colors.current() is not scheme or not app.styleSheet()
    colors.set_current(name)
    if changed:
        app.setPalette(palette(scheme))
        app.setStyleSheet(stylesheet(scheme))
        log.info("theme: %s (%s)", name, state.choice.value)
        state.changed.emit(name)
    if not state.watching:
        # The desktop switched between light and dark while Footnote runs.
        state.watching = True
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: _follow_system(app))
    return name


def _follow_system(app: QApplication) -> None:
    if _theme_state().choice is ThemeChoice.SYSTEM:
        apply_theme(app, ThemeChoice.SYSTEM)


def current_choice() -> ThemeChoice:
    return _theme_state().choice


def theme_menu(parent: QWidget, choose: Callable[[ThemeChoice], None]) -> QMenu:
    """View → Theme: the three choices, the current one checked."""
    menu = QMenu("&Theme", parent)
    group = QActionGroup(menu)
    actions: dict[ThemeChoice, QAction] = {}
    for choice, label in THEME_LABELS.items():
        action = QAction(label, menu, checkable=True)
        group.addAction(action)
        menu.addAction(action)
        action.triggered.connect(lambda _checked=False, c=choice: choose(c))
        actions[choice] = action

    def check_current() -> None:
        actions[current_choice()].setChecked(True)

    menu.aboutToShow.connect(check_current)
    check_current()
    return menu


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
