"""Light, dark and the system's theme, and every text readable in each.

The contrast check walks the real window's widgets on every page, the
Settings dialog, a message box and the menus, in both themes, and measures
what Qt really resolves: a widget's text colour is its palette's foreground
after the stylesheet polished it, its background is the colour most of its
pixels have in a grab of the window (so a parent's background, a stylesheet
rule or the Fusion palette all count, as the user sees them). Rich text's
inline colours are checked against the same background. Menu entries and
list/table items are drawn by the style, not by a widget: their text is the
pixel farthest in contrast from the item's background. WCAG AA: 4.5:1.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPoint, QRect, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QWidget,
)

from app.main_window import MainWindow
from app.style import colors, theme
from app.style.colors import ThemeChoice
from app.widgets.settings_dialog import SettingsDialog
from engine.passages import SourcePassage
from tests.app.conftest import wait_for_model

AA_TEXT_CONTRAST = 4.5
STYLE_QSS = Path(__file__).resolve().parents[2] / "assets" / "style.qss"
_INLINE_COLOR = re.compile(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{6})")
ANSWER = (
    "Footnote reads **your files** [1] and the web [2].\n\n"
    "```python\ndef answer(question):\n    return 42  # the cited page\n```\n\n"
    "Run `footnote --help` for more."
)


def luminance(color: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(color.redF())
        + 0.7152 * channel(color.greenF())
        + 0.0722 * channel(color.blueF())
    )


def contrast(a: QColor, b: QColor) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def dominant(image: QImage, rect: QRect) -> QColor:
    """The colour most pixels of ``rect`` have: the background text sits on."""
    rect = rect.intersected(image.rect())
    counts: Counter[int] = Counter()
    for y in range(rect.top(), rect.bottom() + 1, 2):
        for x in range(rect.left(), rect.right() + 1, 2):
            counts[image.pixel(x, y) & 0xFFFFFF] += 1
    return QColor(counts.most_common(1)[0][0]) if counts else QColor("white")


def ink(image: QImage, rect: QRect, background: QColor) -> QColor:
    """The pixel of ``rect`` farthest in contrast from its background: the text's colour."""
    rect = rect.intersected(image.rect())
    best, best_ratio = background, 1.0
    for y in range(rect.top(), rect.bottom() + 1):
        for x in range(rect.left(), rect.right() + 1):
            color = QColor(image.pixel(x, y))
            ratio = contrast(color, background)
            if ratio > best_ratio:
                best, best_ratio = color, ratio
    return best


def visible_text(widget: QWidget) -> str:
    if isinstance(widget, QLabel):
        return widget.text() if widget.pixmap().isNull() else ""
    if isinstance(widget, QAbstractButton):
        return widget.text()
    if isinstance(widget, QLineEdit):
        return widget.text() or widget.placeholderText()
    if isinstance(widget, QPlainTextEdit):
        return widget.toPlainText() or widget.placeholderText()
    if isinstance(widget, QComboBox):
        return widget.currentText()
    return ""


def text_widgets(root: QWidget) -> Iterator[QWidget]:
    for widget in [root, *root.findChildren(QWidget)]:
        if (
            widget.isVisible()
            and widget.isEnabled()
            and widget.width() > 4
            and not widget.visibleRegion().isEmpty()  # scrolled out of view: not seen
            and not isinstance(widget, QMenu)
            and visible_text(widget).strip()
        ):
            yield widget


def check_widgets(root: QWidget, where: str) -> list[str]:
    """Every text/background pair under ``root`` below AA, as sentences."""
    QApplication.processEvents()
    image = root.grab().toImage()
    problems = []
    for widget in text_widgets(root):
        if isinstance(widget, QAbstractSpinBox):
            continue  # its line edit is checked
        rect = QRect(widget.mapTo(root, QPoint(0, 0)), widget.size())
        background = dominant(image, rect)
        palette = widget.palette()
        role = (
            QPalette.ColorRole.Text
            if isinstance(widget, (QLineEdit, QPlainTextEdit))
            else widget.foregroundRole()
        )
        pairs = [("text", palette.color(role))]
        if isinstance(widget, QLabel):
            pairs += [("inline", QColor(c)) for c in _INLINE_COLOR.findall(widget.text())]
            if "<a " in widget.text():
                pairs.append(("link", palette.color(QPalette.ColorRole.Link)))
        if isinstance(widget, (QLineEdit, QPlainTextEdit)) and not (
            widget.text() if isinstance(widget, QLineEdit) else widget.toPlainText()
        ):
            pairs = [("placeholder", palette.color(QPalette.ColorRole.PlaceholderText))]
        for what, color in pairs:
            ratio = contrast(color, background)
            if ratio < AA_TEXT_CONTRAST:
                name = widget.objectName() or type(widget).__name__
                problems.append(
                    f"{where}: {name} {visible_text(widget)[:40]!r} {what} {color.name()} "
                    f"on {background.name()} = {ratio:.2f}:1"
                )
    problems += check_items(root, image, where)
    return problems


def check_items(root: QWidget, image: QImage, where: str) -> list[str]:
    """List and table entries (drawn by the style, so measured in pixels)."""
    problems = []
    for view in root.findChildren(QAbstractItemView):
        if not view.isVisible():
            continue
        model = view.model()
        offset = view.viewport().mapTo(root, QPoint(0, 0))
        for row in range(min(model.rowCount(QModelIndex()), 6)):
            # (a list model's columnCount is private in Qt: walk the valid indexes)
            for index in iter_row(model, row):
                if not str(index.data() or "").strip():
                    continue
                rect = view.visualRect(index).translated(offset)
                if rect.isEmpty() or not view.viewport().rect().contains(view.visualRect(index)):
                    continue
                background = dominant(image, rect)
                ratio = contrast(ink(image, rect, background), background)
                if ratio < AA_TEXT_CONTRAST:
                    problems.append(
                        f"{where}: {view.objectName()} item {index.data()!r} "
                        f"on {background.name()} = {ratio:.2f}:1"
                    )
    return problems


def iter_row(model: QAbstractItemModel, row: int) -> Iterator[QModelIndex]:
    column = 0
    while (index := model.index(row, column)).isValid():
        yield index
        column += 1


def check_menu(menu: QMenu, where: str) -> list[str]:
    menu.popup(QPoint(10, 10))
    QApplication.processEvents()
    actions = [a for a in menu.actions() if a.isVisible() and not a.isSeparator() and a.text()]
    if actions:
        menu.setActiveAction(actions[0])  # the highlighted entry is checked too
    QApplication.processEvents()
    image = menu.grab().toImage()
    problems = []
    for action in actions:
        if not action.isEnabled():
            continue
        rect = menu.actionGeometry(action)
        background = dominant(image, rect)
        ratio = contrast(ink(image, rect, background), background)
        if ratio < AA_TEXT_CONTRAST:
            problems.append(
                f"{where}: menu entry {action.text()!r} on {background.name()} = {ratio:.2f}:1"
            )
        if action.menu() is not None:
            problems += check_menu(action.menu(), f"{where} › {action.text()}")
    menu.hide()
    return problems


@pytest.fixture
def busy_window(qtbot, window_with, tiny_model: Path, tmp_path: Path) -> MainWindow:
    """The window with everything that shows text: a conversation with a cited
    answer (code, inline code, sources), both kinds of banner, the status line."""
    window = window_with(tiny_model)
    wait_for_model(qtbot, window)
    guide = tmp_path / "guide.pdf"
    guide.write_bytes(b"%PDF-1.4\n")
    sources = [
        SourcePassage(
            "Footnote answers from the files you choose.",
            "guide.pdf p. 4",
            "document",
            {"path": str(guide), "page": 4},
        ),
        SourcePassage(
            "A page about Footnote.",
            "Footnote",
            "web",
            {"url": "https://example.org/footnote", "title": "Footnote"},
        ),
    ]
    # Conversations in the sidebar (one selected), entries in the ledger's table.
    first = window.store.create_conversation("Reading list in Markdown")
    window.store.create_conversation("What does Footnote read?")
    window.conversations_controller.refresh(select=first.id)
    window.ledger_page.ledger.record("query", "duckduckgo", "footnote citations")
    window.ledger_page.ledger.record("fetch", "fetch", "https://example.org/footnote")
    window.ledger_page.refresh()
    window.chat.add_message("user", "What does Footnote read?")
    window.chat.add_message("assistant", ANSWER, footer="12 tokens · 0.4 s", sources=sources)
    window.new_chat_button.setFocus()
    return window


# Menus are popped up to be measured; the offscreen platform cannot grab the keyboard.
@pytest.mark.qt_log_ignore("This plugin does not support grabbing the keyboard")
@pytest.mark.parametrize("choice", [ThemeChoice.LIGHT, ThemeChoice.DARK])
def test_every_text_meets_wcag_aa_in_each_theme(
    qtbot, busy_window: MainWindow, choice: ThemeChoice
) -> None:
    window = busy_window
    window.set_theme(choice)
    assert colors.current()["name"] == choice.value
    problems: list[str] = []
    window.banner.show_message("The model could not be loaded.", details="trace")
    QApplication.processEvents()
    problems += check_widgets(window, f"{choice} chat, error banner")
    window.banner.show_message("Your settings were reset.", level="info")
    QApplication.processEvents()
    problems += check_widgets(window, f"{choice} chat, info banner")
    window.banner.hide()
    for page in (window.welcome, window.models_page, window.documents_page, window.ledger_page):
        window.pages.setCurrentWidget(page)
        problems += check_widgets(window, f"{choice} {page.objectName()}")

    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.show()
    problems += check_widgets(dialog, f"{choice} Settings")
    dialog.close()
    box = QMessageBox(
        QMessageBox.Icon.Question, "Delete?", "Delete this conversation?", parent=window
    )
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    qtbot.addWidget(box)
    box.show()
    problems += check_widgets(box, f"{choice} message box")
    box.close()
    # The conversation search over the window, a match marked in its row.
    window.search_conversations()
    popup = window.search_popup
    assert popup is not None
    popup.query.setText("Footnote")
    popup.search_now()
    assert popup.hits
    problems += check_widgets(popup, f"{choice} search")
    popup.close()
    for action in window.menuBar().actions():
        problems += check_menu(action.menu(), f"{choice} {action.text()} menu")
    assert not problems, "\n".join(problems)


def test_a_theme_applies_at_once_is_saved_and_restyles_answers(busy_window: MainWindow) -> None:
    window = busy_window
    answer = window.chat.bubbles()[-1]
    window.set_theme(ThemeChoice.LIGHT)
    light_rows = answer.sources_panel.rows[0].text()
    assert colors.LIGHT["code_bg"] in answer.body.text()
    window.set_theme(ThemeChoice.DARK)
    answer = window.chat.bubbles()[-1]
    assert window.settings.theme == "dark"
    assert QApplication.palette().color(QPalette.ColorRole.Window).name() == colors.DARK["bg"]
    # Rich text carries inline colours: the finished answer was rendered again.
    assert colors.DARK["code_bg"] in answer.body.text()
    assert answer.sources_panel.rows[0].text() != light_rows
    from app.settings import load_settings

    assert load_settings(window.paths.settings_file).settings.theme == "dark"


def test_the_theme_is_chosen_in_settings_and_in_the_view_menu(
    qtbot, busy_window: MainWindow
) -> None:
    window = busy_window
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    assert dialog.theme.currentData() == "system"  # the default follows the desktop
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.apply_to(window.settings)
    assert window.settings.theme == "dark"
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    themes = next(a.menu() for a in view.actions() if a.menu() is not None)
    light = next(a for a in themes.actions() if a.text() == "Light")
    light.trigger()
    assert window.settings.theme == "light" and colors.current()["name"] == "light"
    themes.aboutToShow.emit()
    assert light.isChecked()


@pytest.mark.parametrize("choice", [ThemeChoice.LIGHT, ThemeChoice.DARK])
def test_focus_is_visible_on_send_and_new_chat(
    qtbot, busy_window: MainWindow, choice: ThemeChoice
) -> None:
    """A focus ring: the focused button looks different from the unfocused one."""
    window = busy_window
    window.set_theme(choice)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    window.composer.set_text("a question")  # Send enabled
    for button in (window.composer.button, window.new_chat_button):
        window.conversations.setFocus()
        QApplication.processEvents()
        before = button.grab().toImage()
        button.setFocus(Qt.FocusReason.TabFocusReason)
        qtbot.waitUntil(button.hasFocus)
        QApplication.processEvents()
        assert button.grab().toImage() != before, button.objectName()


def test_following_the_system_uses_the_desktops_scheme(qapp: QApplication) -> None:
    if QApplication.styleHints().colorScheme() != Qt.ColorScheme.Unknown:
        pytest.skip("this platform names its colour scheme; the palette fallback is unused")
    state = theme._theme_state()
    before = state.system_palette_dark
    try:
        state.system_palette_dark = True
        assert theme.resolve(ThemeChoice.SYSTEM) == "dark"
        state.system_palette_dark = False
        assert theme.resolve(ThemeChoice.SYSTEM) == "light"
        assert theme.resolve("no such theme") == "light"  # a hand-edited file follows the system
        assert theme.resolve(ThemeChoice.DARK) == "dark"
    finally:
        state.system_palette_dark = before


@pytest.mark.parametrize("scheme", [colors.LIGHT, colors.DARK], ids=["light", "dark"])
def test_highlighted_code_is_readable_on_the_code_background(scheme) -> None:
    """Syntax colours come from a Pygments style made for other backgrounds;
    each is brought to AA on ours (comments were ~3:1)."""
    from app.widgets.markdown_render import markdown_to_html

    code = (
        "```python\n# a comment\n@decorator\nclass Answer(Base):\n"
        '    """Doc."""\n    value: int = 0x2A  # the answer\n'
        "    def cite(self, n=[1, 2]):\n        return f'{n!r}' or None\n```\n"
        "```diff\n- old line\n+ new line\n```"
    )
    before = colors.current()
    colors.set_current(scheme["name"])
    try:
        rendered = markdown_to_html(code)
    finally:
        colors.set_current(before["name"])
    found = set(_INLINE_COLOR.findall(rendered))
    assert len(found) >= 4  # highlighted, not plain
    weak = {c: round(colors.contrast(c, scheme["code_bg"]), 2) for c in found}
    assert all(ratio >= AA_TEXT_CONTRAST for ratio in weak.values()), weak


def test_the_stylesheet_names_every_colour_from_the_schemes() -> None:
    """No colour is written into assets/style.qss: each is a scheme's @name,
    so the dark theme cannot miss one, and both schemes define every name."""
    text = re.sub(r"/\*.*?\*/", "", STYLE_QSS.read_text(encoding="utf-8"), flags=re.S)
    assert not re.findall(r"#[0-9a-fA-F]{3,8}\b", text)
    assert set(colors.LIGHT) == set(colors.DARK)
    for scheme in (colors.LIGHT, colors.DARK):
        assert "@" not in theme.stylesheet(scheme)
