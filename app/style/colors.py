"""The two colour schemes, as plain data (no Qt: the Markdown renderer and the
CLI-side code read them too), and which one is in use.

Every colour the app paints text or a background with comes from here:
``assets/style.qss`` names them as ``@token``, ``app.style.theme`` builds the Qt
palette from them (menus, dialogs, line edits), and rich text (sources,
code blocks) reads ``current()``. Text colours were chosen to meet WCAG AA
(4.5:1) on every background they appear on; tests/app/test_themes.py checks
that on the real widgets.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final


class ThemeChoice(StrEnum):
    """What the user picked (Settings, View → Theme)."""

    SYSTEM = "system"  # follow the desktop's light/dark setting
    LIGHT = "light"
    DARK = "dark"


THEME_LABELS: Final = {
    ThemeChoice.SYSTEM: "Follow the system",
    ThemeChoice.LIGHT: "Light",
    ThemeChoice.DARK: "Dark",
}

LIGHT: Final = MappingProxyType(
    {
        "name": "light",
        "bg": "#ffffff",  # the chat, pages, cards
        "ink": "#1f2430",  # body text
        "muted": "#5b6270",  # secondary text (hints, details)
        "faint": "#646b78",  # the quietest text (footers, Copy); still AA on every surface
        "line": "#e4e7ec",
        "border": "#d4d9e1",
        "sidebar": "#f5f6f8",
        "hover": "#eceef2",
        "selected": "#e0e7ff",
        "accent": "#3b63f0",  # filled buttons, progress
        "accent_hover": "#2f55dc",
        "accent_text": "#2f55dc",  # links and accent-coloured text on bg
        "on_accent": "#ffffff",
        "accent_disabled": "#b8c4ee",
        "progress": "#b8c4ee",  # a progress bar's fill: its text (ink) stays readable
        "focus": "#3b63f0",  # focus rings
        "focus_on_accent": "#1f2430",  # focus ring around an accent-filled button
        "stop": "#1f2430",
        "stop_hover": "#394150",
        "on_stop": "#ffffff",
        "user_bubble": "#eef2ff",
        "user_bubble_border": "#dde5ff",
        "error_bg": "#fff1f0",
        "error_border": "#f5c2bd",
        "info_bg": "#eef6ff",
        "info_border": "#c4dcf7",
        "tooltip_bg": "#1f2430",
        "tooltip_ink": "#ffffff",
        "scroll_handle": "#d0d5dc",
        "scroll_hover": "#b5bcc6",
        "code_bg": "#f6f7f9",
        "code_border": "#e3e6ea",
        "inline_code_bg": "#eef0f3",
        "alt_row": "#f8f9fb",
        "problem": "#b42318",  # a red readable on bg, alt_row and selected
        "disabled_ink": "#8a919c",  # disabled controls (exempt from AA, still legible)
        "pygments": "default",
    }
)

DARK: Final = MappingProxyType(
    {
        "name": "dark",
        "bg": "#1b1e24",
        "ink": "#e6e8ec",
        "muted": "#a9b0bb",
        "faint": "#9aa2ad",
        "line": "#2f343d",
        "border": "#434a56",
        "sidebar": "#22262d",
        "hover": "#2c313a",
        "selected": "#2f3a5c",
        "accent": "#3b63f0",
        "accent_hover": "#4a70f5",
        "accent_text": "#93abff",
        "on_accent": "#ffffff",
        "accent_disabled": "#2c3550",
        "progress": "#3a4a80",
        "focus": "#93abff",
        "focus_on_accent": "#e6e8ec",
        "stop": "#e6e8ec",
        "stop_hover": "#c9cdd4",
        "on_stop": "#1b1e24",
        "user_bubble": "#252c3d",
        "user_bubble_border": "#34405e",
        "error_bg": "#3a2124",
        "error_border": "#6b3238",
        "info_bg": "#1e2b3b",
        "info_border": "#35506f",
        "tooltip_bg": "#e6e8ec",
        "tooltip_ink": "#1b1e24",
        "scroll_handle": "#434a56",
        "scroll_hover": "#565e6b",
        "code_bg": "#23272e",
        "code_border": "#343a44",
        "inline_code_bg": "#2c313a",
        "alt_row": "#20242b",
        "problem": "#ff9b91",
        "disabled_ink": "#7d8592",
        "pygments": "one-dark",
    }
)

SCHEMES: Final = {"light": LIGHT, "dark": DARK}

_current: MappingProxyType[str, str] = LIGHT


def current() -> MappingProxyType[str, str]:
    """The scheme in use (light until ``app.style.theme.apply_theme`` says otherwise)."""
    return _current


def set_current(name: str) -> None:
    global _current
    _current = SCHEMES[name]


AA_TEXT_CONTRAST = 4.5  # WCAG 2 AA for body text
# Below this luminance a background contrasts more with white than with black.
EQUAL_CONTRAST_LUMINANCE = 0.179


def luminance(hex_color: str) -> float:
    """WCAG relative luminance of "#rrggbb"."""
    value = hex_color.lstrip("#")

    def channel(part: str) -> float:
        c = int(part, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(value[i : i + 2]) for i in (0, 2, 4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two "#rrggbb" colours (1 to 21)."""
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def readable_on(color: str, background: str, minimum: float = AA_TEXT_CONTRAST) -> str:
    """``color``, or the nearest mix of it toward white (on a dark background)
    or black (on a light one) that reaches ``minimum`` contrast. Used for
    syntax colours, whose styles were not made for our backgrounds."""
    if contrast(color, background) >= minimum:
        return color
    target = 255 if luminance(background) < EQUAL_CONTRAST_LUMINANCE else 0
    value = color.lstrip("#")
    rgb = [int(value[i : i + 2], 16) for i in (0, 2, 4)]
    mixed = color
    for step in range(1, 21):
        share = step / 20
        mixed = "#" + "".join(f"{round(c + (target - c) * share):02x}" for c in rgb)
        if contrast(mixed, background) >= minimum:
            break
    return mixed


def parse_choice(value: str) -> ThemeChoice:
    """A stored choice; anything unknown (a hand-edited file) follows the system."""
    try:
        return ThemeChoice(value)
    except ValueError:
        return ThemeChoice.SYSTEM
