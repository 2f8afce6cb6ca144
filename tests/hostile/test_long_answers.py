"""A very long answer (a paragraph of 10,000 links, thousands of paragraphs)
is laid out in pieces between turns of the event loop: the window keeps
answering while it renders, and every word arrives."""

from __future__ import annotations

from PySide6.QtCore import QTimer

from app.widgets.chat_view import ChatView
from app.widgets.markdown_render import markdown_to_html, parse_blocks
from app.widgets.streaming_markdown import LONG_ANSWER_CHARS, display_pieces

LINKS = 10_000


def _long_answer() -> str:
    links = " ".join(f"[site {i}](https://example.org/{i})" for i in range(LINKS))
    paragraphs = "\n\n".join(f"Paragraph {n} about herons. " * 8 for n in range(600))
    return f"# Findings\n\n{paragraphs}\n\n{links}\n\nThe last words.\n"


def test_pieces_cover_the_answer_in_order() -> None:
    text = _long_answer()
    pieces = display_pieces(text)
    assert "".join(p.text for p in pieces) == text
    assert any(not p.rich for p in pieces)  # the giant paragraph: plain slices
    assert pieces[0].rich and pieces[-1].rich
    assert len(parse_blocks(text)) == 1 + 600 + 2


def test_many_links_still_show_their_real_targets() -> None:
    text = " ".join(f"[bank{i}.com](https://evil.example/{i})" for i in range(2000))
    rendered = markdown_to_html(text)
    assert rendered.count("(https://evil.example/") == 2000  # each note shown once


def test_a_long_answer_renders_between_event_loop_turns(qtbot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.show()
    text = _long_answer()
    assert len(text) > LONG_ANSWER_CHARS
    bubble = view.begin_answer()
    view.append_answer(text)
    turns_while_rendering: list[bool] = []

    view.end_answer(text)
    # Queued after end_answer: it runs at the next event-loop turn, which
    # comes while the pieces are still being laid out, not after all of them.
    QTimer.singleShot(0, lambda: turns_while_rendering.append(bubble.rendering))

    qtbot.waitUntil(lambda: bool(turns_while_rendering), timeout=10_000)
    assert turns_while_rendering == [True]
    qtbot.waitUntil(lambda: not bubble.rendering, timeout=120_000)
    shown = "".join(label.text() for label in bubble._frozen)
    assert "Paragraph 599 about herons." in shown
    assert f"site {LINKS - 1}" in shown
    assert "The last words." in shown
    assert bubble.text == text
