"""The model writes the web search query, on the conversation's KV cache."""

from __future__ import annotations

import datetime as _dt
import threading
from pathlib import Path

import pytest

from engine.chat_template import ChatMessage
from engine.context import ContextProgress, ContextRequest, SourcePassage
from engine.events import Finished, TurnEvent
from engine.llama_internals import context_handle
from engine.model import LoadOptions, LocalModel, load_model
from engine.query_writer import (
    MAX_QUERY_CHARS,
    MAX_QUERY_TOKENS,
    fallback_query,
    query_instruction,
    sanitize_query,
)
from engine.synthetic_model import SCRIPTED_ANSWER
from engine.turn import ChatSession, TurnRequest

SYSTEM = "You are a helpful assistant."
TODAY = _dt.date(2024, 6, 3)


def finished(events: list[TurnEvent]) -> Finished:
    last = events[-1]
    assert isinstance(last, Finished), last
    return last


def assert_query_shape(query: str) -> None:
    assert query and query == query.strip()
    assert "\n" not in query and len(query) <= MAX_QUERY_CHARS
    assert not any(ch in query for ch in "\"'`*")


def test_the_instruction_has_the_date_and_previous_questions() -> None:
    text = query_instruction("And in 2023?", ["Who won the   Tour de France?"], TODAY)
    assert "Today is Monday, 3 June 2024." in text
    assert "Previous questions:\n- Who won the Tour de France?" in text
    assert text.endswith("Current question: And in 2023?")


def test_a_babbling_model_gives_the_questions_key_words(model: LocalModel) -> None:
    # The scripted model answers anything with its "Footnote runs Phi-3…" line.
    query = ChatSession(model).write_search_query(
        [ChatMessage("system", SYSTEM)], "Is my data private?", today=TODAY
    )
    assert query == "data private"


def test_a_query_about_the_question_is_cleaned_and_kept(model: LocalModel) -> None:
    question = "Which computer does Footnote run Phi-3 on?"
    query = ChatSession(model).write_search_query([], question, today=TODAY)
    # The scripted line with its Markdown and full stop taken off.
    assert query == "Footnote runs Phi-3 entirely on this computer"
    assert_query_shape(query)


def test_a_model_that_never_stops_is_cut_to_one_short_line(looping_model: Path) -> None:
    import llama_cpp

    loaded = load_model(looping_model, LoadOptions(context_tokens=512))
    try:
        ctx = context_handle(loaded.llama)
        llama_cpp.llama_perf_context_reset(ctx)
        query = ChatSession(loaded).write_search_query([], "Where does it run?", today=TODAY)
        perf = llama_cpp.llama_perf_context(ctx)
        prompt = loaded.chat_format.render(
            [ChatMessage("user", query_instruction("Where does it run?", [], TODAY))]
        )
        prompt_tokens = len(loaded.tokenize(prompt, add_bos=True, special=True))
    finally:
        loaded.close()
    assert_query_shape(query)
    assert perf.n_p_eval + perf.n_eval <= prompt_tokens + MAX_QUERY_TOKENS


def test_query_writing_keeps_the_conversations_kv_cache(model: LocalModel) -> None:
    """After the query, the answer turn re-reads only what follows the shared
    system prompt + history (llama.cpp's own counters)."""
    import llama_cpp

    ctx = context_handle(model.llama)

    def nothing(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        yield from ()
        return []

    session = ChatSession(model)
    # As in the window: every turn has a source (the first found nothing).
    first = finished(
        list(session.run(TurnRequest(SYSTEM, [], "What is Footnote?"), threading.Event(), nothing))
    )
    history = [
        ChatMessage("user", first.user_content_as_sent),
        ChatMessage("assistant", first.text),
    ]
    conversation_tokens = list(session._cache.tokens)  # turn 1's prompt + answer
    turn_start = len(model.tokenize("<|end|>\n<|user|>\n", add_bos=False, special=True))
    costs: dict[str, int] = {}
    queries: list[str] = []

    def perf_total() -> int:
        perf = llama_cpp.llama_perf_context(ctx)
        return int(perf.n_p_eval + perf.n_eval)

    def source(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        assert request.write_search_query is not None
        llama_cpp.llama_perf_context_reset(ctx)
        queries.append(request.write_search_query(cancel))
        costs["query"] = perf_total()
        llama_cpp.llama_perf_context_reset(ctx)
        yield from ()
        return [SourcePassage("Footnote keeps data local.", "readme.md", "document", {}, "r", 1.0)]

    question = "Is Footnote private?"
    events = list(session.run(TurnRequest(SYSTEM, history, question), threading.Event(), source))
    second = finished(events)
    costs["answer"] = perf_total()

    [query] = queries
    assert_query_shape(query)
    tail = (
        "<|end|>\n<|user|>\n"
        + query_instruction(question, ["What is Footnote?"], _dt.date.today())
        + "<|end|>\n<|assistant|>\n"
    )
    tail_tokens = len(model.tokenize(tail, add_bos=False, special=True))
    # The query read only its own turn (plus the tokens it wrote), not the conversation.
    assert tail_tokens <= costs["query"] <= tail_tokens + MAX_QUERY_TOKENS
    # The answer found the whole conversation still cached: its prompt and answer
    # tokens exactly as sampled, plus the start of the new user turn.
    assert second.stats.reused_prompt_tokens >= len(conversation_tokens) + turn_start
    assert costs["answer"] == second.stats.evaluated_prompt_tokens + second.stats.generated_tokens
    assert second.stats.evaluated_prompt_tokens == second.stats.prompt_tokens - (
        second.stats.reused_prompt_tokens
    )
    assert second.text == SCRIPTED_ANSWER


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('Query: "GGUF file format"', "GGUF file format"),
        ("search query: `GGUF   format`\nmore text", "GGUF format"),
        ("- **GGUF format spec**.", "GGUF format spec"),
        ("\n\n  GGUF format  \n", "GGUF format"),
        ("", "GGUF format"),  # nothing written
        ("Sure! Here is a long answer about many unrelated things " * 2, "GGUF format"),
        ("The weather is nice", "GGUF format"),  # not about the question
    ],
)
def test_sanitize(raw: str, expected: str) -> None:
    assert sanitize_query(raw, "What is the GGUF format?") == expected


def test_a_runaway_reply_is_not_a_query() -> None:
    assert sanitize_query("GGUF format", "What is GGUF?", ran_out=True) == "GGUF"


def test_a_short_follow_up_borrows_the_previous_questions_words() -> None:
    previous = ["Who won the Tour de France?"]
    assert fallback_query("And in 2023?", previous) == "won Tour de France 2023"
    assert sanitize_query("Tour de France 2023 winner", "And in 2023?", previous) == (
        "Tour de France 2023 winner"
    )


def test_caps_length_at_a_word() -> None:
    question = " ".join(f"word{i}" for i in range(60))
    query = fallback_query(question)
    assert len(query) <= MAX_QUERY_CHARS and query.split()[-1].startswith("word")
    assert fallback_query("why?") == "why?"


def test_a_stop_left_from_an_earlier_turn_does_not_abort_the_query(model: LocalModel) -> None:
    session = ChatSession(model)
    stopped = threading.Event()
    stopped.set()
    list(session.run(TurnRequest(SYSTEM, [], "Hello"), stopped))
    question = "Which computer does Footnote run Phi-3 on?"
    query = session.write_search_query([], question, today=TODAY, cancel=threading.Event())
    assert query == "Footnote runs Phi-3 entirely on this computer"  # the model's, not the fallback
