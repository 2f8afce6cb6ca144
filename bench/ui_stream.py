"""GUI-thread cost of streaming a long answer, per 50 ms render tick.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.ui_stream

Streams a 1,500-token Markdown answer (paragraphs, lists, code, tables; one
token taken as 4 characters) into the real ``ChatView``, 25 tokens per tick
(what a fast GPU writes in 50 ms), and times each tick on the GUI thread:
the render plus the layout and paint Qt does for it (``processEvents``). CPU
time of this thread (``time.thread_time``), so other load on the machine
does not count. Two ways:

* **tail only** (what Footnote does): finished Markdown blocks are rendered
  once, each tick re-renders the block being written;
* **whole answer** (what it did before): each tick re-renders all of it.

Also times saving the answer's draft (``ConversationStore.update_message``,
once a second while streaming) with SQLite's ``synchronous=NORMAL`` (now)
and ``FULL`` (before: an fsync per commit), wall-clock, since an fsync waits
on the disk. Prints a table and writes ``bench/results/ui_stream.json``.
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ANSWER_TOKENS = 1500
CHARS_PER_TOKEN = 4
TOKENS_PER_TICK = 25
DRAFT_SAVES = 40

SECTION = """## Step {n}

Footnote reads your **documents** locally and cites them, so the answer to
question {n} can be checked against its sources in one click. The model keeps
writing about the same step, explaining why it matters, what it depends on,
and what to check before going on, so a reader who skims finds the point.

1. first point of step {n}, with `inline code`
2. second point, with a [link](https://example.org/{n})

```python
def step_{n}(values):
    return [v * {n} for v in values if v]
```

| step | value | note |
|---|---|---|
| {n} | {n}0 | fine |

"""


def long_answer() -> str:
    text, n = "", 1
    while len(text) < ANSWER_TOKENS * CHARS_PER_TOKEN:
        text += SECTION.format(n=n)
        n += 1
    return text[: ANSWER_TOKENS * CHARS_PER_TOKEN]


def stream(mode: str) -> list[float]:
    """Milliseconds of GUI-thread CPU per tick."""
    from PySide6.QtWidgets import QApplication

    from app.widgets.chat_view import ChatView

    app = QApplication.instance() or QApplication([])
    view = ChatView()
    view.resize(900, 700)
    view.show()
    view.add_message("user", "Explain every step, with code.")
    bubble = view.begin_answer()
    text = long_answer()
    step = TOKENS_PER_TICK * CHARS_PER_TOKEN
    ticks = []
    for end in range(step, len(text) + step, step):
        for start in range(end - step, min(end, len(text)), CHARS_PER_TOKEN):
            view.append_answer(text[start : start + CHARS_PER_TOKEN])
        began = time.thread_time()
        if mode == "tail":
            view._dirty = True  # what the 50 ms timer does, timed on its own
            view._render_streaming()
        else:
            bubble.set_text(text[:end], streaming=True)
        app.processEvents()  # the layout and paint this tick causes
        ticks.append(1000 * (time.thread_time() - began))
    view.end_answer(text)
    view.deleteLater()
    app.processEvents()
    return ticks


def draft_saves(synchronous: str) -> list[float]:
    """Milliseconds (wall) per draft save of a growing answer."""
    from engine.history import ConversationStore

    with tempfile.TemporaryDirectory() as folder:
        store = ConversationStore(Path(folder) / "c.sqlite3")
        try:
            store._db.execute(f"PRAGMA synchronous={synchronous}")
            conv = store.create_conversation()
            draft = store.add_message(conv.id, "assistant", "", finish_reason="interrupted")
            text = long_answer()
            times = []
            for i in range(1, DRAFT_SAVES + 1):
                began = time.perf_counter()
                store.update_message(draft.id, text[: i * 100], "interrupted")
                times.append(1000 * (time.perf_counter() - began))
            return times
        finally:
            store.close()


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    tenth = max(len(values) // 10, 1)
    return {
        "median_ms": round(statistics.median(values), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "max_ms": round(ordered[-1], 2),
        "first_tenth_mean_ms": round(statistics.mean(values[:tenth]), 2),
        "last_tenth_mean_ms": round(statistics.mean(values[-tenth:]), 2),
        "total_s": round(sum(values) / 1000, 2),
    }


def main() -> None:
    from app.widgets.markdown_render import markdown_to_html

    markdown_to_html(long_answer())  # imports and Pygments' lexers, charged to neither
    measured: dict[str, Callable[[], list[float]]] = {
        "tail only (now)": lambda: stream("tail"),
        "whole answer (before)": lambda: stream("whole"),
    }
    rows = {name: summary(run()) for name, run in measured.items()}
    saves = {
        "synchronous=NORMAL (now)": summary(draft_saves("NORMAL")),
        "synchronous=FULL (before)": summary(draft_saves("FULL")),
    }
    ticks = ANSWER_TOKENS // TOKENS_PER_TICK
    print(f"\n{ANSWER_TOKENS}-token answer, {ticks} ticks of {TOKENS_PER_TICK} tokens\n")
    print("| render per tick | median ms | p95 ms | max ms | first 10% ms | last 10% ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['median_ms']} | {r['p95_ms']} | {r['max_ms']} | "
            f"{r['first_tenth_mean_ms']} | {r['last_tenth_mean_ms']} |"
        )
    print(f"\n| draft save ({DRAFT_SAVES} saves) | median ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|")
    for name, r in saves.items():
        print(f"| {name} | {r['median_ms']} | {r['p95_ms']} | {r['max_ms']} |")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "ui_stream.json"
    out.write_text(
        json.dumps(
            {
                "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
                "answer_tokens": ANSWER_TOKENS,
                "tokens_per_tick": TOKENS_PER_TICK,
                "render": rows,
                "draft_save": saves,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
