"""The prompt cache: verbatim reuse of cached tokens, and shifting the KV
cache when the oldest history is left out (real llama.cpp, tiny model)."""

from __future__ import annotations

import threading
from pathlib import Path

import llama_cpp
import pytest

from engine.chat_template import ChatMessage
from engine.context import SourcePassage, user_content_with_sources
from engine.events import Finished, Notice, TurnEvent
from engine.llama_internals import cached_tokens, context_handle
from engine.model import LoadOptions, LocalModel, load_model
from engine.prompt_cache import MIN_SHIFT_REUSE_TOKENS, PromptCache, find_gap
from engine.synthetic_model import SCRIPTED_ANSWER
from engine.turn import ChatSession, SamplingParams, TurnRequest

SYSTEM = "You are a helpful assistant."


def run(session: ChatSession, request: TurnRequest) -> list[TurnEvent]:
    return list(session.run(request, threading.Event()))


def finished(events: list[TurnEvent]) -> Finished:
    last = events[-1]
    assert isinstance(last, Finished), last
    return last


def test_cut_at_control_tokens_it_tokenizes_like_the_whole_text(model: LocalModel) -> None:
    sources = [SourcePassage("Water boils at 100 °C.\n\nSee  also <b>x</b>.", "notes.md", "web")]
    messages = [
        ChatMessage("system", SYSTEM),
        ChatMessage("user", "Hi there"),
        ChatMessage("assistant", " An answer with  spaces, 😀 and a literal <|user|> marker."),
        ChatMessage("user", user_content_with_sources("Why?", sources)),
    ]
    text = model.chat_format.render(messages)
    tokenized = PromptCache(model).tokenize(model.chat_format.render_parts(messages))
    # The literal marker inside the answer stays text; everything else is as
    # llama.cpp tokenizes the whole text.
    literal = "a literal <|user|> marker"
    safe = text.replace(literal, "a literal marker")
    expected = model.tokenize(safe, add_bos=model.chat_format.add_bos, special=True)
    assert len(tokenized.tokens) > len(expected)
    assert model.llama.detokenize(tokenized.tokens, special=True).decode().count("<|user|>") == 3
    assert model.prompt_tokenizer.count_markers(tokenized.tokens) == (
        model.prompt_tokenizer.count_markers(expected)
    )
    assert len(tokenized.segments) > len(messages)  # cut at every control token


def test_find_gap_takes_whole_left_out_messages_only() -> None:
    user, end = 1, 2
    controls = {user, end}
    system = [0, 9, 9, 9]
    first = [user, *range(100, 130), end]
    second = [user, *range(200, 230), end]
    third = [user, *range(300, 310), end]
    cached = system + first + second + third
    # The first exchange left out: the rest is found right after it.
    tokens = system + second + third
    start = len(system) + 1  # both turns open with <|user|>
    found = find_gap(cached, tokens, start, controls)
    assert found == (start + len(first), len(second + third) - 1)
    # A turn that merely quotes later text (the search-query turn quotes the
    # question) is not left-out history: no message boundary lines up.
    quoting = [*system, user, 50, 51, *range(200, 230), end]
    asked = [*system, user, *range(200, 230), end]
    assert find_gap(quoting, asked, len(system) + 1, controls) is None
    # Too little to reuse is not worth a shift.
    short = [*system, user, *range(400, 400 + MIN_SHIFT_REUSE_TOKENS - 3), end]
    assert find_gap(system + first + short, system + short, len(system) + 1, controls) is None


@pytest.fixture
def small(tiny_model: Path) -> LocalModel:
    loaded = load_model(tiny_model, LoadOptions(context_tokens=1024))
    yield loaded  # type: ignore[misc]
    loaded.close()


def test_left_out_history_is_shifted_in_the_cache_not_read_again(small: LocalModel) -> None:
    """A conversation longer than the context: once the oldest exchanges are
    left out, each turn still evaluates only its own new tokens (llama.cpp's
    own counters), the cache holds exactly the new prompt, and answers stay right."""
    session = ChatSession(small)
    history: list[ChatMessage] = []
    drops = 0
    ctx = context_handle(small.llama)
    for turn in range(30):
        question = f"Question {turn}: " + "tell me more about the water " * 6
        llama_cpp.llama_perf_context_reset(ctx)
        events = run(
            session, TurnRequest(SYSTEM, history, question, SamplingParams(max_answer_tokens=12))
        )
        perf = llama_cpp.llama_perf_context(ctx)
        end = finished(events)
        dropped = any("oldest messages" in e.text for e in events if isinstance(e, Notice))
        if turn and end.stats.reused_prompt_tokens:
            # New: the question's own turn (~70 tokens) and the end of the last answer.
            assert end.stats.evaluated_prompt_tokens < 100, (turn, end.stats)
            assert perf.n_p_eval + perf.n_eval <= 100 + end.stats.generated_tokens
        if dropped:
            drops += 1
            assert end.stats.reused_prompt_tokens > 0.6 * end.stats.prompt_tokens
        assert end.text == SCRIPTED_ANSWER[: len(end.text)]
        # llama.cpp's cache holds exactly the tokens of this prompt + answer.
        cached = cached_tokens(small.llama)
        assert cached == session._cache.tokens[: len(cached)]
        assert len(cached) >= end.stats.prompt_tokens
        history += [ChatMessage("user", question), ChatMessage("assistant", end.text)]
    assert drops >= 5  # the conversation really outgrew the context


def test_a_fresh_session_after_a_shift_gives_the_same_answer(small: LocalModel) -> None:
    """Shifting is an approximation of reading the kept history afresh; with
    the scripted model the answer must not change at all."""
    history = []
    for i in range(12):
        history += [
            ChatMessage("user", f"question {i} " + "word " * 30),
            ChatMessage("assistant", "answer " * 20),
        ]
    shifted = ChatSession(small)
    first = finished(run(shifted, TurnRequest(SYSTEM, history[:-4], "Next?")))
    second = finished(run(shifted, TurnRequest(SYSTEM, history, "Last?")))
    small.llama.reset()
    fresh = finished(run(ChatSession(small), TurnRequest(SYSTEM, history, "Last?")))
    assert first.text == second.text == fresh.text
    assert second.stats.prompt_tokens == fresh.stats.prompt_tokens
