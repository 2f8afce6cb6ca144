"""Regenerate and edit reuse llama.cpp's KV cache up to the point that
changed, as counted by llama.cpp itself (llama_perf_context): the app asks a
regenerated answer with the sources stored with the earlier version
(app.controllers.chat_turn.stored_sources), and an edited question after the
history before it."""

from __future__ import annotations

import threading
from pathlib import Path

from engine.chat_template import ChatMessage
from engine.context import ContextProgress, ContextRequest, ContextSource, Passage, SourcePassage
from engine.events import Finished, TurnEvent
from engine.history import ConversationStore
from engine.model import LocalModel
from engine.turn import ChatSession, TurnRequest

SYSTEM = "You are a helpful assistant."
FOUND = [
    SourcePassage(
        "Footnote keeps data local. " * 5,
        "readme.md › Privacy",
        "document",
        {"path": "/docs/readme.md", "heading_path": ["Privacy"]},
        "p1",
        0.9,
    ),
    SourcePassage("Answers cite your files.", "guide.md", "document", {"path": "/g.md"}, "p2", 0.4),
]


def source_of(passages: list[Passage]) -> ContextSource:
    def source(request: ContextRequest, cancel: threading.Event) -> ContextProgress:
        yield from ()
        return list(passages)

    return source


def finished(events: list[TurnEvent]) -> Finished:
    last = events[-1]
    assert isinstance(last, Finished), last
    return last


def counted(model: LocalModel, session: ChatSession, request: TurnRequest, source: ContextSource):
    """Run a turn; return its Finished and the tokens llama.cpp decoded for it."""
    import llama_cpp

    ctx = model.llama._ctx.ctx
    llama_cpp.llama_perf_context_reset(ctx)
    end = finished(list(session.run(request, threading.Event(), source)))
    perf = llama_cpp.llama_perf_context(ctx)
    return end, perf.n_p_eval + perf.n_eval


def test_regenerating_with_the_stored_sources_reads_almost_nothing_again(
    model: LocalModel, tmp_path: Path
) -> None:
    store = ConversationStore(tmp_path / "history.sqlite3")
    try:
        session = ChatSession(model)
        request = TurnRequest(SYSTEM, [], "Is it private?")
        first, decoded_first = counted(model, session, request, source_of(FOUND))
        conv = store.create_conversation()
        store.add_message(conv.id, "user", "Is it private?")
        store.add_message(conv.id, "assistant", first.text, sources=first.sources)
        stored = store.messages(conv.id)[1].sources  # what the app gives back

        again, decoded = counted(model, session, request, source_of(list(stored)))
        assert again.stats.prompt_tokens == first.stats.prompt_tokens  # the same prompt
        assert again.stats.evaluated_prompt_tokens <= 1
        # Of the whole prompt llama.cpp decoded the first time, it decodes at
        # most two tokens again (the last one, for its logits); the rest
        # of what it decodes is the new answer.
        assert decoded_first >= first.stats.prompt_tokens > 400
        assert decoded - again.stats.generated_tokens <= 2
    finally:
        store.close()


def test_an_edited_question_reads_only_from_the_edit_on(model: LocalModel) -> None:
    session = ChatSession(model)
    nothing = source_of([])
    one, _ = counted(model, session, TurnRequest(SYSTEM, [], "First question"), nothing)

    history = [ChatMessage("user", "First question"), ChatMessage("assistant", one.text)]
    two, _ = counted(model, session, TurnRequest(SYSTEM, history, "Second question"), nothing)
    # Edit the second question: the system prompt and the first exchange stay cached.
    edited, decoded = counted(
        model, session, TurnRequest(SYSTEM, history, "Second question, edited"), nothing
    )
    new_tail = "Second question, edited<|end|>\n<|assistant|>\n"
    expected = len(model.tokenize(new_tail, add_bos=False, special=True))
    assert edited.stats.evaluated_prompt_tokens <= expected + 2
    assert edited.stats.reused_prompt_tokens >= one.stats.prompt_tokens
    assert decoded == edited.stats.evaluated_prompt_tokens + edited.stats.generated_tokens
    assert two.stats.prompt_tokens > one.stats.prompt_tokens
