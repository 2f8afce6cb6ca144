"""Streaming a long answer: each tick re-renders only the Markdown block
being written (the GUI thread's cost per tick does not grow with the
answer), the result is exactly the whole answer's rendering, and the view
ends at the answer, not on blank space below it."""

from __future__ import annotations

from PySide6.QtCore import QPoint

from app.widgets.chat_view import ChatView
from app.widgets.markdown_render import markdown_to_html
from app.widgets.streaming_markdown import StreamingMarkdown

# A long answer as Phi-3 writes one: headings, paragraphs, a list, code, a table.
SECTION = """## Step {n}

Footnote reads your **documents** locally and cites them, so the answer
to question {n} can be checked against its sources in one click. Long
paragraphs are where a wrapped label's guessed width went wrong: the model
keeps writing sentence after sentence about the same step, explaining why
it matters, what it depends on, and what to check before going on to the
next one, so that a reader who skims still finds the point of step {n}.

- first point of step {n}
- second point, with `inline code`

```python
def step_{n}(x):
    return x * {n}
```

| step | value |
|---|---|
| {n} | {n}0 |

"""
LONG_ANSWER = "".join(SECTION.format(n=n) for n in range(1, 11))  # ~1,500 tokens
PIECE_CHARS = 4  # about a token
TICK_CHARS = 100  # what arrives between two renders (25 tokens: a fast GPU's 50 ms)


def pieces(text: str) -> list[str]:
    return [text[i : i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)]


def test_finished_blocks_render_once_and_the_result_is_the_whole_render() -> None:
    streaming = StreamingMarkdown()
    frozen: list[str] = []
    text = ""
    for piece in pieces(LONG_ANSWER):
        text += piece
        update = streaming.update(text)
        frozen += update.frozen
    assert "".join(frozen) + update.tail == markdown_to_html(LONG_ANSWER)
    assert streaming.frozen_chars > 0.95 * len(LONG_ANSWER)


def test_each_tick_rerenders_only_the_block_being_written(qtbot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    view.add_message("user", "Explain every step")
    view.begin_answer()
    rerendered: list[int] = []
    view.streaming_rendered.connect(lambda: rerendered.append(view.streaming_tail_chars))
    for tick_start in range(0, len(LONG_ANSWER), TICK_CHARS):
        for piece in pieces(LONG_ANSWER[tick_start : tick_start + TICK_CHARS]):
            view.append_answer(piece)
        with qtbot.waitSignal(view.streaming_rendered, timeout=5_000):
            pass
    # Bounded by the largest block (a paragraph, a code fence) plus what one
    # tick adds, not by the answer (the whole answer every tick, before).
    largest_block = max(len(block) for block in SECTION.split("\n\n"))
    assert max(rerendered) <= largest_block + TICK_CHARS < len(LONG_ANSWER) / 5
    view.end_answer(LONG_ANSWER)
    assert view.bubbles()[-1].body.text() == markdown_to_html(LONG_ANSWER)


def test_after_a_long_answer_the_view_ends_at_the_answer(qtbot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    view.add_message("user", "Explain every step")
    view.begin_answer()
    for piece in pieces(LONG_ANSWER):
        view.append_answer(piece)
    with qtbot.waitSignal(view.streaming_rendered, timeout=5_000):
        pass
    view.end_answer(LONG_ANSWER, "1,500 tokens")
    answer = view.bubbles()[-1]
    bar = view.verticalScrollBar()

    def laid_out() -> bool:  # the final text's height has reached the layout
        return answer.body.height() == answer.body.heightForWidth(answer.body.width())

    qtbot.waitUntil(laid_out, timeout=5_000)
    # Scrolled to the end, and the end is the answer (the canvas's 20 px
    # margin below it), not a band of blank space.
    bottom = answer.mapTo(view.viewport(), QPoint(0, answer.height())).y()
    assert bar.value() == bar.maximum() > 0
    assert 0 <= view.viewport().height() - bottom <= 24
