from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.chat_template import ChatMessage
from engine.errors import ContextOverflow
from engine.events import Failed, Finished, Notice, Sources, Status, Token, TurnEvent
from engine.model import LoadOptions, LocalModel, load_model
from engine.synthetic_model import SCRIPTED_ANSWER, SCRIPTED_PIECES
from engine.turn import ChatSession, SamplingParams, TurnRequest

SYSTEM = "You are a helpful assistant."


def run(session: ChatSession, request: TurnRequest, **kwargs: object) -> list[TurnEvent]:
    return list(session.run(request, threading.Event(), **kwargs))  # type: ignore[arg-type]


def finished(events: list[TurnEvent]) -> Finished:
    last = events[-1]
    assert isinstance(last, Finished), last
    return last


def test_answer_streams_token_by_token(model: LocalModel) -> None:
    events = run(ChatSession(model), TurnRequest(SYSTEM, [], "Hello!"))
    tokens = [e.text for e in events if isinstance(e, Token)]
    assert len(tokens) == len(SCRIPTED_PIECES)  # one event per generated token
    assert "".join(tokens) == SCRIPTED_ANSWER
    end = finished(events)
    assert end.text == SCRIPTED_ANSWER
    assert end.reason == "stop"
    assert end.stats.generated_tokens == len(SCRIPTED_PIECES)
    assert end.stats.tokens_per_second > 0


@pytest.mark.parametrize("stop_after", [1, 3, 10])
def test_stop_takes_effect_within_one_token(model: LocalModel, stop_after: int) -> None:
    cancel = threading.Event()
    seen = []
    for event in ChatSession(model).run(TurnRequest(SYSTEM, [], "Hello!"), cancel):
        if isinstance(event, Token):
            seen.append(event.text)
            if len(seen) == stop_after:
                cancel.set()
        last = event
    assert isinstance(last, Finished)
    assert last.reason == "cancelled"
    assert len(seen) == stop_after
    assert last.text == "".join(seen).rstrip()
    assert last.stats.generated_tokens == stop_after


def test_cancel_before_start_generates_nothing(model: LocalModel) -> None:
    cancel = threading.Event()
    cancel.set()
    events = list(ChatSession(model).run(TurnRequest(SYSTEM, [], "Hello!"), cancel))
    assert not any(isinstance(e, Token) for e in events)
    assert finished(events).reason == "cancelled"


def test_message_too_long_for_the_context_is_refused_clearly(tiny_model: Path) -> None:
    small = load_model(tiny_model, LoadOptions(context_tokens=256))
    try:
        events = run(ChatSession(small), TurnRequest(SYSTEM, [], "hello world " * 300))
    finally:
        small.close()
    assert not any(isinstance(e, Token) for e in events)
    failure = events[-1]
    assert isinstance(failure, Failed)
    assert isinstance(failure.error, ContextOverflow)
    assert "too long" in str(failure.error)
    assert "Shorten the message" in str(failure.error)
    assert failure.error.limit_tokens == 256


def test_old_history_is_dropped_to_fit_with_a_notice(tiny_model: Path) -> None:
    small = load_model(tiny_model, LoadOptions(context_tokens=512))
    history = []
    for i in range(20):
        history += [
            ChatMessage("user", f"question {i} " + "word " * 10),
            ChatMessage("assistant", "answer " * 10),
        ]
    try:
        events = run(ChatSession(small), TurnRequest(SYSTEM, history, "Latest question?"))
    finally:
        small.close()
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices and "oldest messages" in notices[0]
    assert finished(events).text == SCRIPTED_ANSWER


def test_answer_that_fills_the_context_ends_with_reason_length(looping_model: Path) -> None:
    small = load_model(looping_model, LoadOptions(context_tokens=512))
    try:
        end = finished(run(ChatSession(small), TurnRequest(SYSTEM, [], "Go on forever.")))
    finally:
        small.close()
    assert end.reason == "length"
    assert end.stats.prompt_tokens + end.stats.generated_tokens >= 511
    assert "cut short" in end.notes[0]


def test_max_answer_tokens(model: LocalModel) -> None:
    request = TurnRequest(SYSTEM, [], "Hi", SamplingParams(max_answer_tokens=5))
    end = finished(run(ChatSession(model), request))
    assert end.reason == "length"
    assert end.stats.generated_tokens == 5


def test_follow_up_turn_evaluates_only_new_tokens(model: LocalModel) -> None:
    """KV reuse, as counted by llama.cpp itself (llama_perf_context)."""
    import llama_cpp

    session = ChatSession(model)
    first = finished(run(session, TurnRequest(SYSTEM, [], "What is Footnote?")))
    assert first.stats.reused_prompt_tokens == 0

    history = [
        ChatMessage("user", first.user_content_as_sent),
        ChatMessage("assistant", first.text),
    ]
    new_suffix = "<|end|>\n<|user|>\nAnd why?<|end|>\n<|assistant|>\n"
    expected_new = len(model.tokenize(new_suffix, add_bos=False))

    ctx = model.llama._ctx.ctx
    llama_cpp.llama_perf_context_reset(ctx)
    second = finished(run(session, TurnRequest(SYSTEM, history, "And why?")))
    perf = llama_cpp.llama_perf_context(ctx)

    assert second.stats.evaluated_prompt_tokens == expected_new
    assert second.stats.reused_prompt_tokens == second.stats.prompt_tokens - expected_new
    assert second.stats.reused_prompt_tokens > first.stats.prompt_tokens
    # Every token llama.cpp decoded this turn: the new prompt tokens and the answer.
    assert perf.n_p_eval + perf.n_eval == expected_new + second.stats.generated_tokens


def test_changed_history_falls_back_to_the_longest_shared_prefix(model: LocalModel) -> None:
    session = ChatSession(model)
    first = finished(run(session, TurnRequest(SYSTEM, [], "One")))
    edited = [ChatMessage("user", "One (edited)"), ChatMessage("assistant", first.text)]
    second = finished(run(session, TurnRequest(SYSTEM, edited, "Two")))
    # The system prompt is still shared, the edited turn onwards is not.
    assert 0 < second.stats.reused_prompt_tokens < first.stats.prompt_tokens
    assert second.text == SCRIPTED_ANSWER


@dataclass(frozen=True)
class FakePassage:
    text: str
    citation: str


def test_context_source_passages_go_into_the_newest_user_turn(model: LocalModel) -> None:
    asked = []

    def source(query: str, cancel: threading.Event) -> Sequence[FakePassage]:
        asked.append(query)
        return [FakePassage("Footnote keeps data local.", "readme.md › Privacy")]

    events = run(
        ChatSession(model), TurnRequest(SYSTEM, [], "Is it private?"), context_source=source
    )
    assert asked == ["Is it private?"]
    sources = [e for e in events if isinstance(e, Sources)]
    assert sources and sources[0].passages[0].citation == "readme.md › Privacy"
    sent = finished(events).user_content_as_sent
    assert "[1] readme.md › Privacy\nFootnote keeps data local." in sent
    assert sent.endswith("Question: Is it private?")


def test_failing_context_source_still_answers_with_a_notice(model: LocalModel) -> None:
    def broken(query: str, cancel: threading.Event) -> Sequence[FakePassage]:
        raise ConnectionError("search engine unreachable")

    events = run(ChatSession(model), TurnRequest(SYSTEM, [], "Hi"), context_source=broken)
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert any("search engine unreachable" in n for n in notices)
    assert finished(events).text == SCRIPTED_ANSWER


def test_stop_interrupts_a_prompt_batch_in_progress(tmp_path: Path) -> None:
    """Stop must not wait for a whole 512-token prompt batch (seconds for
    Phi-3-mini on a laptop CPU): llama.cpp's abort callback ends the batch.

    llama.cpp polls that callback only in its CPU backend, so layers on a GPU
    finish their batch first (tens of milliseconds there; checked on a Vulkan
    build: the batch completes whole and is kept). Hence the CPU here."""
    from engine.synthetic_model import ModelShape, write_phi3_gguf

    # Big enough that one ~480-token batch takes far longer than the 20 ms below.
    shape = ModelShape(n_embd=512, n_layer=6, n_head=8, n_ff=2048, n_ctx_train=4096)
    path = write_phi3_gguf(tmp_path / "slower.gguf", shape=shape, weights="random")
    loaded = load_model(path, LoadOptions(context_tokens=1024, gpu_layers=0))
    cancel = threading.Event()
    timer = threading.Timer(0.02, cancel.set)
    try:
        events = []
        for event in ChatSession(loaded).run(TurnRequest("", [], "word " * 470), cancel):
            events.append(event)
            if event == Status("Reading the prompt…"):
                timer.start()
        end = events[-1]
        assert isinstance(end, Finished) and end.reason == "cancelled"
        assert not any(isinstance(e, Token) for e in events)
        assert loaded.llama.n_tokens == 0  # the aborted batch left nothing half-evaluated
        # ...and the session still works afterwards.
        again = list(ChatSession(loaded).run(TurnRequest("", [], "hi"), threading.Event()))
        assert isinstance(again[-1], Finished)
    finally:
        timer.cancel()
        timer.join()
        loaded.close()
