from __future__ import annotations

import datetime as _dt
import itertools
import threading
from pathlib import Path

import pytest

from engine.budget import FirstWordTarget
from engine.chat_template import ChatMessage
from engine.context import (
    ContextProgress,
    ContextRequest,
    EarlierMessage,
    SourcePassage,
)
from engine.errors import ContextOverflow
from engine.events import (
    Failed,
    Finished,
    Notice,
    Progress,
    ReadingPrompt,
    Sources,
    Status,
    Token,
    TurnEvent,
)
from engine.history import ConversationStore
from engine.model import LoadOptions, LocalModel, load_model
from engine.synthetic_model import SCRIPTED_ANSWER, SCRIPTED_PIECES
from engine.turn import ChatSession, SamplingParams, TurnBudget, TurnRequest

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
    expected_new = len(model.tokenize(new_suffix, add_bos=False, special=True))

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


def passage(text: str, citation: str, score: float = 0.5, kind: str = "document") -> SourcePassage:
    return SourcePassage(text, citation, kind, {"path": f"/docs/{citation}"}, citation, score)  # type: ignore[arg-type]


def test_context_source_passages_go_into_the_newest_user_turn(model: LocalModel) -> None:
    asked: list[ContextRequest] = []

    def source(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        asked.append(request)
        yield Status("Looking in your documents…")
        return [passage("Footnote keeps data local.", "readme.md › Privacy")]

    history = [
        ChatMessage("user", "What is Footnote?"),
        ChatMessage("assistant", "An assistant."),
        EarlierMessage("user", "Does it cost money?", sources=(passage("x", "y"),)),
        ChatMessage("assistant", "No."),
    ]
    events = run(
        ChatSession(model), TurnRequest(SYSTEM, history, "Is it private?"), context_source=source
    )
    [request] = asked
    assert request.question == "Is it private?"
    # Earlier questions as the user asked them, without the sources they were sent with.
    assert request.recent_questions == ("What is Footnote?", "Does it cost money?")
    assert request.today == _dt.date.today()
    statuses = [e.text for e in events if isinstance(e, Progress)]
    assert statuses[:3] == [
        "Looking for sources…",
        "Looking in your documents…",
        "Reading 1 source…",
    ]
    [sources] = [e for e in events if isinstance(e, Sources)]
    assert [p.citation for p in sources.passages] == ["readme.md › Privacy"]
    end = finished(events)
    assert end.sources == tuple(sources.passages)
    assert "[1] readme.md › Privacy\nFootnote keeps data local." in end.user_content_as_sent
    assert end.user_content_as_sent.endswith("Question: Is it private?")
    assert end.text == SCRIPTED_ANSWER


def nothing(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
    yield from ()
    return []


@pytest.mark.parametrize("history_kind", ["as sent", "stored apart"])
def test_follow_up_after_a_sourced_turn_evaluates_only_new_tokens(
    model: LocalModel, history_kind: str, tmp_path: Path
) -> None:
    """Sources sit in the newest user turn, so the next turn still reuses the
    whole previous prompt and answer from llama.cpp's KV cache: also when the
    question and its sources come back from the conversation database apart
    (the question as written, the passages whole) and are rendered again."""
    import llama_cpp

    def source(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        yield from ()
        return [
            passage("Footnote keeps data local. " * 5, "readme.md › Privacy", 0.9),
            passage("Answers cite your files.", "guide.md › Citations", 0.4),
        ]

    session = ChatSession(model)
    first = finished(run(session, TurnRequest(SYSTEM, [], "Is it private?"), context_source=source))
    assert len(first.sources) == 2
    assert first.question == "Is it private?"
    history: list[ChatMessage | EarlierMessage] = [
        ChatMessage("user", first.user_content_as_sent),
        ChatMessage("assistant", first.text),
    ]
    if history_kind == "stored apart":
        store = ConversationStore(tmp_path / "history.sqlite3")
        conversation = store.create_conversation().id
        question = store.add_message(conversation, "user", first.question)
        store.set_sent_sources(question.id, first.sources)
        store.add_message(conversation, "assistant", first.text, sources=first.sources)
        history = [m.as_earlier_message() for m in store.messages(conversation)]
        store.close()
        assert history[0].text == "Is it private?"
    new_suffix = "<|end|>\n<|user|>\nAnd why?<|end|>\n<|assistant|>\n"
    expected_new = len(model.tokenize(new_suffix, add_bos=False, special=True))

    ctx = model.llama._ctx.ctx
    llama_cpp.llama_perf_context_reset(ctx)
    # The next turn found nothing to send (as in the window, it still has a source).
    second = finished(
        run(session, TurnRequest(SYSTEM, history, "And why?"), context_source=nothing)
    )
    perf = llama_cpp.llama_perf_context(ctx)

    assert second.stats.evaluated_prompt_tokens == expected_new
    assert second.stats.reused_prompt_tokens > first.stats.prompt_tokens
    assert perf.n_p_eval + perf.n_eval == expected_new + second.stats.generated_tokens


def test_sources_that_overflow_the_context_are_trimmed_from_the_bottom_of_the_search_order(
    tiny_model: Path,
) -> None:
    small = load_model(tiny_model, LoadOptions(context_tokens=1024))
    found = [
        passage(
            f"Fact number {i}. " + "the water is long and hot " * 20, f"doc{i}.md", score=i / 10
        )
        for i in range(10)
    ]

    def source(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        yield from ()
        return found

    try:
        events = run(
            ChatSession(small), TurnRequest(SYSTEM, [], "Which facts?"), context_source=source
        )
    finally:
        small.close()
    end = finished(events)
    kept = [p.citation for p in end.sources]
    assert 0 < len(kept) < 10
    # The search's order stands (scores rise here, so re-ranking by score
    # would have kept the last ones): the first ones stay, numbered in order.
    assert kept == [f"doc{i}.md" for i in range(len(kept))]
    assert end.stats.prompt_tokens + 256 <= 1024
    assert end.text == SCRIPTED_ANSWER


def test_long_history_gives_way_to_sources_with_a_notice(tiny_model: Path) -> None:
    small = load_model(tiny_model, LoadOptions(context_tokens=1024))
    history = []
    for i in range(20):
        history += [
            ChatMessage("user", f"question {i} " + "word " * 10),
            ChatMessage("assistant", "answer " * 10),
        ]
    found = [
        passage(f"Fact {i}. " + "the water is hot " * 15, f"doc{i}.md", 1 - i / 10)
        for i in range(6)
    ]
    asked: list[ContextRequest] = []

    def source(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        asked.append(request)
        yield from ()
        return found

    try:
        events = run(
            ChatSession(small), TurnRequest(SYSTEM, history, "Which facts?"), context_source=source
        )
    finally:
        small.close()
    end = finished(events)
    # Sources keep at least 40% of the context; the oldest exchanges made room.
    assert len(end.sources) >= 3
    assert any("oldest messages" in e.text for e in events if isinstance(e, Notice))
    assert end.stats.prompt_tokens + 256 <= 1024
    assert end.text == SCRIPTED_ANSWER


def test_a_slow_machine_reads_fewer_sources_to_meet_the_first_word_target(
    model: LocalModel,
) -> None:
    found = [
        passage(f"Fact {i}. " + "word " * 60, f"doc{i}.md", score=1 - i / 20) for i in range(8)
    ]

    def source(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        yield from ()
        return found

    request = TurnRequest(SYSTEM, [], "Which facts?")
    roomy = finished(run(ChatSession(model), request, context_source=source))
    assert len(roomy.sources) == 8
    # 20 tokens/s x 10 s: about 200 new tokens may be read before the first word.
    fast = TurnBudget(FirstWordTarget.FAST, prompt_tokens_per_s=20.0)
    events = run(ChatSession(model), request, context_source=source, budget=fast)
    end = finished(events)
    assert 1 <= len(end.sources) < 8
    assert end.stats.evaluated_prompt_tokens <= 200 + 160  # the time floor keeps one passage
    assert any(
        "Using" in e.text and "of 8 sources" in e.text for e in events if isinstance(e, Notice)
    )


def test_turns_teach_the_session_this_machines_prompt_speed(model: LocalModel) -> None:
    session = ChatSession(model)
    assert not session.prompt_speed.measured
    finished(run(session, TurnRequest(SYSTEM, [], "word " * 100)))
    assert session.prompt_speed.measured
    assert session.prompt_speed.tokens_per_s > 0
    before = list(session.prompt_speed.samples)
    finished(run(session, TurnRequest(SYSTEM, [], "hi")))  # under 64 new tokens: not a sample
    assert session.prompt_speed.samples == before


def test_failing_context_source_still_answers_with_a_notice(model: LocalModel) -> None:
    def broken(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        yield Status("Searching the web…")
        raise ConnectionError("search engine unreachable")

    events = run(ChatSession(model), TurnRequest(SYSTEM, [], "Hi"), context_source=broken)
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert any("search engine unreachable" in n for n in notices)
    assert not any(isinstance(e, Sources) for e in events)
    assert finished(events).text == SCRIPTED_ANSWER
    assert finished(events).sources == ()


def test_stop_interrupts_a_prompt_batch_in_progress(tmp_path: Path) -> None:
    """Stop must not wait for a whole 512-token prompt batch (seconds for
    Phi-3-mini on a laptop CPU): llama.cpp's abort callback ends the batch.

    llama.cpp polls that callback only in its CPU backend, so layers on a GPU
    finish their batch first (tens of milliseconds there; checked on a Vulkan
    build: the batch completes whole and is kept). Hence the CPU here."""
    from engine.synthetic_model import ModelShape, write_phi3_gguf

    shape = ModelShape(n_embd=512, n_layer=6, n_head=8, n_ff=2048, n_ctx_train=4096)
    path = write_phi3_gguf(tmp_path / "slower.gguf", shape=shape, weights="random")
    loaded = load_model(path, LoadOptions(context_tokens=1024, gpu_layers=0))
    cancel = StopDuringTheBatch()
    try:
        events = []
        for event in ChatSession(loaded).run(TurnRequest("", [], "word " * 470), cancel):
            events.append(event)
            if event == ReadingPrompt(sources=0):
                cancel.armed = True
        end = events[-1]
        assert isinstance(end, Finished) and end.reason == "cancelled"
        assert not any(isinstance(e, Token) for e in events)
        assert loaded.llama.n_tokens == 0  # the aborted batch left nothing half-evaluated
        # ...and the session still works afterwards.
        again = list(ChatSession(loaded).run(TurnRequest("", [], "hi"), threading.Event()))
        assert isinstance(again[-1], Finished)
    finally:
        loaded.close()


class StopDuringTheBatch(threading.Event):
    """A user pressing Stop while llama.cpp evaluates the prompt, without a
    timer's race (fire too early: the turn sees Stop before the batch; too
    late on a fast machine: the batch is done): once armed, it reads as set
    from its POLLS_BEFORE_STOP-th poll on. The turn itself polls once before
    each batch; the rest are llama.cpp's abort callback, inside the batch,
    once per graph node (hundreds per batch)."""

    POLLS_BEFORE_STOP = 5

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.polls = 0

    def is_set(self) -> bool:
        if self.armed and not super().is_set():
            self.polls += 1
            if self.polls >= self.POLLS_BEFORE_STOP:
                self.set()
        return super().is_set()


class CountingEvent(threading.Event):
    """A cancel flag that counts how often it is read."""

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    def is_set(self) -> bool:
        self.polls += 1
        return super().is_set()


def test_answer_tokens_are_decoded_without_llama_cpp_polling_python(model: LocalModel) -> None:
    """llama.cpp's abort callback runs after every graph node and needs the
    GIL: while answer tokens are decoded (one at a time, Stop checked between
    them) it must be off, or a busy GUI thread slows every token down."""
    cancel = CountingEvent()
    polls_at_tokens = []
    request = TurnRequest(SYSTEM, [], "Hello!", SamplingParams(max_answer_tokens=8))
    for event in ChatSession(model).run(request, cancel):
        if isinstance(event, Token):
            polls_at_tokens.append(cancel.polls)
    assert len(polls_at_tokens) >= 4
    per_token = [b - a for a, b in itertools.pairwise(polls_at_tokens)]
    assert max(per_token) <= 2, per_token  # the turn's own check, not one per graph node
