"""First word after Enter when a question is typed at a human pace into the
real window, with and without reading ahead (``app.controllers.read_ahead``).

    .venv/bin/python -m bench.ui_typing            # Phi-3-mini-shaped Q4_K_M
    .venv/bin/python -m bench.ui_typing --quick    # tiny model: a smoke run

The window (offscreen Qt, the app's own composition root) has the model
loaded and a folder of real documents indexed (``bench.grounding``'s folder:
installed source, Markdown, PDF and DOCX built at bench time). Each question
of ``bench/grounding_questions.json`` (the first ``--questions``) is typed
into the composer key by key (``--cps`` characters per second, one QTest key
click per timer tick, the event loop idle in between), in a new chat each time,
with documents on Auto and the Balanced first-word target; then Enter. The
clock runs from Enter to the first answer token. Read-ahead is off and on
for every other question (a question asked twice would find its prompt
cached), so drifts hit both alike; one warm-up question first (the model's
weights paged in, the prompt speed measured).
Goal (issue #19): with >= 8 s of typing, first word <= 2 s after Enter.
Prints a table and writes ``bench/results/ui_typing.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generation import cpu_name, ensure_model
from bench.grounding import CACHE, QUESTIONS
from bench.grounding_folder import build_folder
from bench.ui import run_until

RESULTS = Path(__file__).resolve().parent / "results"
GOAL_FIRST_WORD_S = 2.0
# Loggers whose records make each question's timeline (what was read ahead,
# what the turn found cached, the search): the why behind the first word.
TIMELINE_LOGGERS = (
    "engine",
    "app.controllers.read_ahead",
    "app.workers.engine",
    "app.wiring.grounding",
    "app.wiring.turn_grounding",
)


class Timeline(logging.Handler):
    """Log records and turn events with their time since typing started."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.start = time.perf_counter()
        self.lines: list[str] = []

    def mark(self, what: str) -> None:
        self.lines.append(f"{time.perf_counter() - self.start:7.2f} {what}")

    def emit(self, record: logging.LogRecord) -> None:
        self.mark(f"{record.name}: {record.getMessage()}")


def ask_typed(window: Any, text: str, cps: float, read_ahead: bool) -> dict[str, Any]:
    """Type ``text`` into a new chat at ``cps``, press Enter, time the first token."""
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest

    from engine.events import Finished, PromptProgress, Token

    window.chat_controller.show(None)
    window.read_ahead.enabled = read_ahead
    read: list[int] = []
    window.engine.read_ahead_done.connect(read.append)
    first: list[float] = []
    done: list[Finished] = []
    timeline = Timeline()
    loggers = [logging.getLogger(name) for name in TIMELINE_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(timeline)
    window.engine.read_ahead_done.connect(
        lambda tokens: timeline.mark(f"read-ahead done: {tokens} tokens cached")
    )

    def on_event(_turn: int, event: object) -> None:
        if not first and not isinstance(event, PromptProgress):
            timeline.mark(f"event {type(event).__name__}")
        if isinstance(event, Token) and not first:
            first.append(time.perf_counter())
        elif isinstance(event, Finished):
            done.append(event)
            window.stop()

    window.engine.turn_event.connect(on_event)
    try:
        typing_started = time.perf_counter()
        # One key per timer tick, the event loop idle in between as between a
        # person's keystrokes (QTest.keyClicks with a delay would hold the GIL
        # for the whole text, and the engine thread could not read ahead).
        typed = [0]

        def type_next() -> None:
            QTest.keyClick(window.composer.edit, text[typed[0]])
            typed[0] += 1
            if typed[0] < len(text):
                QTimer.singleShot(int(1000 / cps), type_next)

        QTimer.singleShot(0, type_next)
        run_until(lambda: typed[0] >= len(text), len(text) / cps + 60)
        typed_s = time.perf_counter() - typing_started
        entered = time.perf_counter()
        timeline.mark("Enter")
        QTest.keyClick(window.composer.edit, Qt.Key.Key_Return)
        run_until(lambda: bool(first) or not window.composer.generating, 600)
        window.stop()
        run_until(lambda: not window.composer.generating, 120)
    finally:
        window.engine.turn_event.disconnect(on_event)
        window.engine.read_ahead_done.disconnect(read.append)
        window.engine.read_ahead_done.disconnect()
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(timeline)
            logger.setLevel(level)
    stats = done[-1].stats if done else None
    return {
        "question": text,
        "read_ahead": read_ahead,
        "typed_s": round(typed_s, 2),
        "read_ahead_tokens": read[-1] if read else 0,
        "first_word_s": round(first[0] - entered, 2) if first else None,
        "prompt_tokens": stats.prompt_tokens if stats else None,
        "evaluated_prompt_tokens": stats.evaluated_prompt_tokens if stats else None,
        "sources": len(done[-1].sources) if done else None,
        "timeline": timeline.lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--questions", type=int, default=6, help="half off, half on")
    parser.add_argument("--cps", type=float, default=7.0, help="characters per second typed")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display needed
    model = args.model or ensure_model("tiny" if args.quick else "phi3-mini")
    spec = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    questions = [q["question"] for q in spec["questions"]][: args.questions + 1]
    folder = CACHE / "folder"
    build_folder(folder)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as home:
        os.environ["FOOTNOTE_HOME"] = home
        results = measure(model, folder, questions, args.cps)
    rows = results["turns"]
    summary: dict[str, Any] = {}
    for mode in (False, True):
        times = [r["first_word_s"] for r in rows if r["read_ahead"] is mode and r["first_word_s"]]
        summary["on" if mode else "off"] = {
            "first_word_p50_s": statistics.median(times) if times else None,
            "first_word_max_s": max(times) if times else None,
            "typed_s_mean": statistics.mean(r["typed_s"] for r in rows if r["read_ahead"] is mode),
        }
    print(
        "| read ahead | question | typed (s) | read ahead (tokens) | prompt / read after "
        "Enter | first word after Enter (s) |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {'on' if r['read_ahead'] else 'off'} | {r['question'][:48]} | {r['typed_s']} | "
            f"{r['read_ahead_tokens']} | {r['prompt_tokens']} / {r['evaluated_prompt_tokens']} | "
            f"{r['first_word_s']} |"
        )
    for mode, s in summary.items():
        p50, worst = s["first_word_p50_s"], s["first_word_max_s"]
        print(f"read ahead {mode}: first word p50 {p50} s, max {worst} s")
    out = {
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count()},
        "model": model.name,
        "cps": args.cps,
        "goal_first_word_s": GOAL_FIRST_WORD_S,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "summary": summary,
        **results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ui_typing.json").write_text(json.dumps(out, indent=2) + "\n")


def measure(model: Path, folder: Path, questions: list[str], cps: float) -> dict[str, Any]:
    from PySide6.QtWidgets import QApplication

    from app.application import build_main_window, configure_application
    from app.paths import AppPaths
    from app.settings import load_settings, save_settings

    paths = AppPaths.from_environment().ensure()
    settings = load_settings(paths.settings_file).settings
    settings.model_path = str(model)
    settings.answer_speed = "balanced"
    save_settings(paths.settings_file, settings)
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    configure_application(app)
    window = build_main_window(paths)
    window.show()
    try:
        if not run_until(lambda: window.engine.model is not None, 600):
            raise RuntimeError("the model did not load within 10 minutes")
        controller = window.documents_controller
        window.add_documents([folder], "bench")
        run_until(lambda: not controller.busy, 900)
        window._show_home_page()
        print("indexed; warming up…", flush=True)
        ask_typed(window, questions[0], cps * 4, read_ahead=False)  # weights paged in
        turns = []
        # Each question once, off and on in turn: a question asked twice would
        # find its whole prompt cached the second time.
        for i, text in enumerate(questions[1:]):
            turns.append(ask_typed(window, text, cps, read_ahead=i % 2 == 1))
            row = turns[-1]
            print({k: v for k, v in row.items() if k != "timeline"}, flush=True)
            print("\n".join("    " + line for line in row["timeline"]), flush=True)
    finally:
        window.close()
        window.store.close()
    return {"turns": turns}


if __name__ == "__main__":
    main()
