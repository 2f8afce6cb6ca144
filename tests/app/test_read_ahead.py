"""Ready before Enter: the window reads a question's sources while it is
typed (documents only: nothing goes to the web before Enter), and the turn
sent then reads only its question."""

from __future__ import annotations

from pathlib import Path

from engine.events import Finished
from retrieval.web.need_search import WebMode
from tests.app.conftest import wait_for_answer
from tests.app.test_grounded_chat import (  # noqa: F401 (fixtures)
    counting_server,
    embedder,
    grounded,
    index,
    team_folder,
)

QUESTION = "What is the travel budget of the team?"


def finished_of(window) -> list[Finished]:  # type: ignore[no-untyped-def]
    seen: list[Finished] = []
    window.engine.turn_event.connect(
        lambda _id, event: seen.append(event) if isinstance(event, Finished) else None
    )
    return seen


def test_sources_are_read_while_typing_and_the_turn_reads_only_its_question(
    qtbot,
    grounded,  # noqa: F811
    team_folder: Path,  # noqa: F811
) -> None:
    window = grounded()
    index(qtbot, window, team_folder)
    done = finished_of(window)

    # Asked cold: the whole prompt is read after Enter.
    window.send(QUESTION)
    wait_for_answer(qtbot, window)
    cold = done[-1].stats
    window.chat_controller.show(None)  # a new chat, as Ctrl+N

    with qtbot.waitSignal(window.engine.read_ahead_done, timeout=30_000) as read:
        window.composer.edit.setPlainText("What is the travel budget")
    assert read.args[0] > 0
    window.composer.edit.setPlainText(QUESTION)
    window.composer.send_requested.emit(window.composer.text())
    wait_for_answer(qtbot, window)
    warm = done[-1].stats
    assert warm.reused_prompt_tokens >= read.args[0]
    # Only "Question: …" and the end of the turn are left to read (8 here;
    # without reading ahead, sources and question: ~250 after the system prompt).
    assert warm.evaluated_prompt_tokens <= 16
    assert warm.evaluated_prompt_tokens * 20 < cold.evaluated_prompt_tokens
    assert [s.citation for s in done[-1].sources] == ["plan.md › Budget"]


def test_typing_never_reaches_the_web(
    qtbot,
    grounded,  # noqa: F811
    team_folder: Path,  # noqa: F811
) -> None:
    with counting_server() as (base, requests):
        window = grounded(web_searxng_url=base, web_allow_local_fetch=True)
        index(qtbot, window, team_folder)
        window.composer.web_toggle.choose(WebMode.ALWAYS)
        with qtbot.waitSignal(window.engine.read_ahead_done, timeout=30_000):
            window.composer.edit.setPlainText("What is the travel budget")
        assert requests == []
        # Short text is not searched at all.
        with qtbot.assertNotEmitted(window.engine.read_ahead_done, wait=1500):
            window.composer.edit.setPlainText("Hi")
