"""Reading ahead while the user types: the sources part of the next prompt
is in llama.cpp's KV cache before Enter, so the turn reads only its question
(llama.cpp's own counters, real tiny model)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from engine.budget import FirstWordTarget
from engine.context import ContextProgress, ContextRequest, SourcePassage
from engine.events import Finished, TurnEvent
from engine.model import LocalModel
from engine.read_ahead import (
    READ_AHEAD_MAX_BATCH_TOKENS,
    READ_AHEAD_MIN_BATCH_TOKENS,
    read_ahead_batch_tokens,
    whole_in_cache,
)
from engine.turn import ChatSession, SamplingParams, TurnBudget, TurnRequest

SYSTEM = "You are a helpful assistant."
PASSAGES = [
    SourcePassage(
        "The travel budget is approved by the finance team in March. " * 6,
        "budget.md › Approval",
        "document",
        {},
        "b1",
        0.7,
    ),
    SourcePassage("Receipts are kept for seven years. " * 5, "rules.md", "document", {}, "r", 0.6),
]
asked: list[str] = []


def source(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
    asked.append(request.question)
    yield from ()
    return PASSAGES


def answer(session: ChatSession, question: str) -> Finished:
    request = TurnRequest(SYSTEM, (), question, SamplingParams(max_answer_tokens=4))
    events: list[TurnEvent] = list(session.run(request, threading.Event(), source))
    done = events[-1]
    assert isinstance(done, Finished), done
    return done


def test_after_reading_ahead_the_turn_reads_only_its_question(
    model: LocalModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = answer(ChatSession(model), "When is the travel budget approved?")
    model.llama.reset()

    session = ChatSession(model)
    typing = TurnRequest(SYSTEM, (), "When is the travel budget", SamplingParams())
    cached = session.read_ahead(typing, threading.Event(), source)
    assert asked[-1] == "When is the travel budget"  # searched for the text so far
    assert cached > 0.8 * cold.stats.prompt_tokens

    # Count what llama.cpp is asked to evaluate, independently of the turn's
    # own statistics (llama.cpp's perf counters count cache positions here).
    evaluated: list[int] = []
    real_eval = model.llama.eval
    monkeypatch.setattr(
        model.llama, "eval", lambda tokens: evaluated.append(len(tokens)) or real_eval(tokens)
    )
    done = answer(session, "When is the travel budget approved?")
    assert done.stats.reused_prompt_tokens == cached
    assert done.stats.evaluated_prompt_tokens < 25  # "Question: …", <|end|>, <|assistant|>
    assert cold.stats.evaluated_prompt_tokens > 5 * done.stats.evaluated_prompt_tokens
    assert sum(evaluated) == done.stats.evaluated_prompt_tokens + done.stats.generated_tokens - 1
    assert [p.id for p in done.sources] == [p.id for p in cold.sources]


def test_reading_ahead_stops_at_once_when_cancelled(model: LocalModel) -> None:
    cancel = threading.Event()
    cancel.set()
    session = ChatSession(model)
    request = TurnRequest(SYSTEM, (), "When is the travel", SamplingParams())
    assert session.read_ahead(request, cancel, source) == 0
    # And the next turn is not held up or confused by it.
    assert answer(session, "When is it approved?").reason in ("stop", "length")


def test_nothing_found_nothing_read(model: LocalModel) -> None:
    def empty(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        yield from ()
        return []

    session = ChatSession(model)
    request = TurnRequest(SYSTEM, (), "Hello the", SamplingParams())
    assert session.read_ahead(request, threading.Event(), empty) == 0


def test_passages_read_ahead_are_sent_as_read_when_the_search_still_chooses_them(
    model: LocalModel,
) -> None:
    """The finished question cuts the passages differently (its own words
    choose each window) and the search ranks them in another order: what was
    read ahead still goes first, as read, so it stays cached."""
    long_text = " ".join(f"Sentence {i} about nothing much." for i in range(60))
    first = SourcePassage(
        long_text + " Budgets are approved in March.", "a.md", "document", {}, "a"
    )
    second = SourcePassage(long_text + " Receipts are kept.", "b.md", "document", {}, "b")
    order: list[list[SourcePassage]] = [[first, second], [second, first]]

    def ranked(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        yield from ()
        return order.pop(0)

    session = ChatSession(model)
    budget = TurnBudget(FirstWordTarget.FAST, prompt_tokens_per_s=150.0)  # windows, not wholes
    typing = TurnRequest(SYSTEM, (), "When are budgets", SamplingParams())
    cached = session.read_ahead(typing, threading.Event(), ranked, budget=budget)
    assert cached > 0
    request = TurnRequest(
        SYSTEM, (), "When are receipts kept?", SamplingParams(max_answer_tokens=2)
    )
    done = list(session.run(request, threading.Event(), ranked, budget=budget))[-1]
    assert isinstance(done, Finished)
    assert [p.id for p in done.sources] == ["a", "b"]
    # Read ahead up to the question typed then ("When are budgets"): all but
    # the words that changed is reused.
    assert done.stats.evaluated_prompt_tokens <= 20
    assert done.stats.reused_prompt_tokens >= cached - 10


def test_newer_text_stops_a_read_ahead_after_its_batch_and_keeps_what_it_read(
    model: LocalModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next words arrive while a read-ahead reads: it finishes the batch
    in progress (never aborts it), stops, and the next read-ahead reuses it."""
    superseded = threading.Event()
    batches: list[int] = []
    real_eval = model.llama.eval

    def eval_then_newer_text(tokens: list[int]) -> None:
        real_eval(tokens)
        batches.append(len(tokens))
        if len(batches) == 2:
            superseded.set()  # a keystroke during the second batch

    monkeypatch.setattr(model.llama, "eval", eval_then_newer_text)
    session = ChatSession(model)
    typing = TurnRequest(SYSTEM, (), "When is the travel budget", SamplingParams())
    cached = session.read_ahead(typing, threading.Event(), source, superseded=superseded)
    assert len(batches) == 2  # the batch in progress was finished, then no more
    assert cached == model.llama.n_tokens == sum(batches)

    batches.clear()
    more = TurnRequest(SYSTEM, (), "When is the travel budget approved", SamplingParams())
    assert session.read_ahead(more, threading.Event(), source) > cached
    assert sum(batches) == model.llama.n_tokens - cached  # nothing read twice


def test_a_read_ahead_superseded_before_it_reads_leaves_the_cache_alone(
    model: LocalModel,
) -> None:
    session = ChatSession(model)
    typing = TurnRequest(SYSTEM, (), "When is the travel budget", SamplingParams())
    cached = session.read_ahead(typing, threading.Event(), source)
    before = list(model.llama.input_ids[: model.llama.n_tokens])
    superseded = threading.Event()
    superseded.set()
    other = TurnRequest(SYSTEM, (), "Something else entirely now", SamplingParams())
    assert session.read_ahead(other, threading.Event(), source, superseded=superseded) == 0
    assert list(model.llama.input_ids[: model.llama.n_tokens]) == before
    assert len(before) == cached


def test_read_ahead_batches_last_about_two_seconds_at_the_measured_speed() -> None:
    assert read_ahead_batch_tokens(19.0) == 38
    assert read_ahead_batch_tokens(2.0) == READ_AHEAD_MIN_BATCH_TOKENS  # smaller is slower
    assert read_ahead_batch_tokens(500.0) == READ_AHEAD_MAX_BATCH_TOKENS


def test_a_passage_read_ahead_that_the_search_still_returns_is_sent_at_no_cost(
    model: LocalModel,
) -> None:
    """Typing found `a`; the whole question ranks it fifth, below what the
    first-word budget takes. It is in the cache, so it still goes (first, as
    read: it costs the first word nothing), and the search's best passages
    get the whole budget for new reading after it."""
    filler = " ".join(f"Sentence {i} about nothing much." for i in range(40))

    def passage(name: str, fact: str) -> SourcePassage:
        return SourcePassage(f"{filler} {fact}", f"{name}.md", "document", {}, name)

    a, b, c, d, e = (
        passage("a", "Budgets are approved in March."),
        passage("b", "Receipts are kept for seven years."),
        passage("c", "Travel is booked through the portal."),
        passage("d", "Hotels above 150 euros need approval."),
        passage("e", "Trains are second class."),
    )

    def ranked(*orders: list[SourcePassage]) -> Callable[..., ContextProgress]:
        left = list(orders)

        def search(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
            yield from ()
            return left.pop(0)

        return search

    budget = TurnBudget(FirstWordTarget.FAST, prompt_tokens_per_s=150.0)
    question = "How long are receipts kept?"
    fresh = list(
        ChatSession(model).run(
            TurnRequest(SYSTEM, (), question, SamplingParams(max_answer_tokens=2)),
            threading.Event(),
            ranked([b, c, d, e, a]),
            budget=budget,
        )
    )[-1]
    assert isinstance(fresh, Finished)
    assert "a" not in [p.id for p in fresh.sources]  # below what the budget takes

    session = ChatSession(model)
    search = ranked([a, b], [b, c, d, e, a])
    cached = session.read_ahead(
        TurnRequest(SYSTEM, (), "When are budgets", SamplingParams()),
        threading.Event(),
        search,
        budget=budget,
    )
    assert cached > 0
    done = list(
        session.run(
            TurnRequest(SYSTEM, (), question, SamplingParams(max_answer_tokens=2)),
            threading.Event(),
            search,
            budget=budget,
        )
    )[-1]
    assert isinstance(done, Finished)
    ids = [p.id for p in done.sources]
    assert ids[:2] == ["a", "b"]  # both were read ahead, and both are still found
    # Everything but the question typed then ("When are budgets", which the
    # finished question does not start with) is reused.
    assert done.stats.reused_prompt_tokens >= cached - 30
    # The budget went to new reading as it would without the read-ahead.
    assert done.stats.evaluated_prompt_tokens >= fresh.stats.evaluated_prompt_tokens - 40


def test_only_passages_the_cache_holds_whole_count_as_read() -> None:
    """A read-ahead stopped in its second passage leaves one whole: only that
    one is sent at no cost; the cut one counts like any other passage."""
    blocks = {"a": 100, "b": 100, "c": 100}
    passages = [SourcePassage("…", f"{n}.md", "document", {}, n) for n in blocks]

    def size(p: SourcePassage) -> int:
        return blocks[p.id]

    # System and history: 100 tokens; the sources 100-400; the question after.
    assert whole_in_cache(passages, size, question_start=400, cached=250) == 1
    assert whole_in_cache(passages, size, question_start=400, cached=400) == 3
    assert whole_in_cache(passages, size, question_start=400, cached=150) == 0
