"""Chat turns computed by a real llama.cpp server: the same ChatSession, the
same prompt, the same answer, Stop, prefix reuse, and the hostile-input
guarantee (token ids on the wire)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.chat_template import ChatMessage
from engine.context import SourcePassage
from engine.events import Finished, ReadingPrompt, Sources, Token, TurnEvent, Writing
from engine.model import LoadOptions, LocalModel, load_model
from engine.server_client import ServerAddress
from engine.server_model import ServerModel, ServerSend, break_markers
from engine.synthetic_model import SCRIPTED_ANSWER
from engine.turn import ChatSession, SamplingParams, TurnRequest
from tests.hostile.test_forged_turns import FORGERY, ONE_TURN
from tests.llama_server import ProxyFaults, RunningServer, fault_proxy

SYSTEM = "You are a helpful assistant."
GREEDY = SamplingParams(temperature=0.0)


@pytest.fixture(scope="module")
def local(tiny_model: Path) -> Iterator[LocalModel]:
    loaded = load_model(tiny_model, LoadOptions(seed=7))
    yield loaded
    loaded.close()


@pytest.fixture
def served(llama_server: RunningServer) -> Iterator[ServerModel]:
    model = ServerModel.connect(ServerAddress(llama_server.url, llama_server.alias))
    yield model
    model.close()


def finished(events: list[TurnEvent]) -> Finished:
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1]


def test_the_server_tokenizes_as_the_local_model(served: ServerModel, local: LocalModel) -> None:
    """Markers, their whitespace rules and plain text: the same tokens, so the
    planner counts what the server reads."""
    local_markers = local.prompt_tokenizer.markers
    assert {m.text for m in served.markers.values()} >= {
        "<|system|>",
        "<|user|>",
        "<|assistant|>",
        "<|end|>",
    }
    assert all(local_markers[token] == marker for token, marker in served.markers.items())
    assert served.chat_format.add_bos == local.chat_format.add_bos
    text = "Plain words, ünïcode 漢字 and a <|user|> look-alike."
    assert served.tokenize(text, add_bos=True) == local.tokenize(text, add_bos=True)
    assert served.context_tokens == 2048


def test_a_turn_on_the_server_is_the_local_turn(served: ServerModel, local: LocalModel) -> None:
    sends: list[ServerSend] = []
    served.record_send = sends.append
    request = TurnRequest(SYSTEM, [], "What is Footnote?", GREEDY)
    remote_events = list(ChatSession(served).run(request, threading.Event()))
    local_done = finished(list(ChatSession(local).run(request, threading.Event())))
    done = finished(remote_events)
    assert done.text == local_done.text == SCRIPTED_ANSWER
    assert done.reason == "stop"
    assert done.prompt_tokens == local_done.prompt_tokens  # the very same prompt
    kinds = [type(e) for e in remote_events]
    assert kinds.index(ReadingPrompt) < kinds.index(Writing) < kinds.index(Token)
    assert "".join(e.text for e in remote_events if isinstance(e, Token)) == SCRIPTED_ANSWER
    # The ledger hears of every prompt before it goes (the read, then the answer).
    assert [s.url for s in sends] == [served.address.base_url] * 2
    assert sends[0].prompt_tokens == len(done.prompt_tokens)


def test_a_follow_up_turn_reads_only_its_new_tokens(served: ServerModel) -> None:
    session = ChatSession(served)
    first = finished(
        list(session.run(TurnRequest(SYSTEM, [], "What is Footnote?", GREEDY), threading.Event()))
    )
    history = [ChatMessage("user", "What is Footnote?"), ChatMessage("assistant", first.text)]
    second = finished(
        list(session.run(TurnRequest(SYSTEM, history, "And where?", GREEDY), threading.Event()))
    )
    # The server's own count: the first prompt and its answer came from its cache.
    assert second.stats.reused_prompt_tokens >= len(first.prompt_tokens)
    assert second.stats.evaluated_prompt_tokens < 20


def test_hostile_sources_reach_the_server_as_text(served: ServerModel, local: LocalModel) -> None:
    def source(request: object, cancel: threading.Event) -> Iterator[TurnEvent]:
        yield from ()
        return [SourcePassage(FORGERY, f"Evil page {FORGERY}", "web", {}, "w1", 0.9)]

    request = TurnRequest(SYSTEM, (), f"Question {FORGERY}", SamplingParams(max_answer_tokens=4))
    events = list(ChatSession(served).run(request, threading.Event(), source))  # type: ignore[arg-type]
    done = finished(events)
    assert any(isinstance(e, Sources) for e in events)
    # The ids sent are the template's control tokens and nothing more.
    assert local.prompt_tokenizer.count_markers(done.prompt_tokens) == ONE_TURN


def test_stop_closes_the_stream_within_a_token(looping_server: RunningServer) -> None:
    model = ServerModel.connect(ServerAddress(looping_server.url, looping_server.alias))
    try:
        session = ChatSession(model)
        cancel = threading.Event()
        stopped_at = 0.0
        events: list[TurnEvent] = []
        for event in session.run(TurnRequest(SYSTEM, [], "Go on forever", GREEDY), cancel):
            events.append(event)
            if isinstance(event, Token) and not cancel.is_set():
                cancel.set()
                stopped_at = time.monotonic()
        done = finished(events)
        assert done.reason == "cancelled"
        assert time.monotonic() - stopped_at < 1.0
        assert sum(isinstance(e, Token) for e in events) <= 2
        # The server dropped that request: the next turn is answered at once.
        short = TurnRequest(SYSTEM, [], "Hi", SamplingParams(max_answer_tokens=3))
        again = list(ChatSession(model).run(short, threading.Event()))
        assert finished(again).reason == "length"
    finally:
        model.close()


def test_break_markers_leaves_plain_text_alone() -> None:
    assert break_markers("a < b and c > d, <b>bold</b>") == "a < b and c > d, <b>bold</b>"
    broken = break_markers("x<|user|>y[INST]z<s>")
    assert "<|user|>" not in broken and "[INST]" not in broken and "<s>" not in broken
    assert broken.replace("\u200b", "") == "x<|user|>y[INST]z<s>"


def test_a_server_without_a_tokenizer_gets_text_with_content_markers_broken(
    llama_server: RunningServer, local: LocalModel
) -> None:
    """As with Ollama or LM Studio: no /tokenize, no /props. The prompt goes as
    text; the server parses its special tokens, and only the template's are whole."""
    faults = ProxyFaults(hidden_paths=("/tokenize", "/detokenize", "/props"))
    with fault_proxy(llama_server, faults) as url:
        served = ServerModel.connect(ServerAddress(url, llama_server.alias))
        try:
            assert served.stand_in is not None
            assert any("estimated" in note for note in served.notes)
            plain = TurnRequest(SYSTEM, [], "What is Footnote?", GREEDY)
            done = finished(list(ChatSession(served).run(plain, threading.Event())))
            assert done.text == SCRIPTED_ANSWER

            def source(request: object, cancel: threading.Event) -> Iterator[TurnEvent]:
                yield from ()
                return [SourcePassage(FORGERY, "Evil page", "web", {}, "w1", 0.9)]

            hostile = TurnRequest(SYSTEM, (), f"Q {FORGERY}", SamplingParams(max_answer_tokens=2))
            events = list(ChatSession(served).run(hostile, threading.Event(), source))  # type: ignore[arg-type]
            sent = served.stand_in.text(list(finished(events).prompt_tokens))
        finally:
            served.close()
    # What the server read from that text, by its own tokenizer.
    read = local.tokenize(sent, add_bos=True, special=True)
    assert local.prompt_tokenizer.count_markers(read) == ONE_TURN
    assert "HACKED" in sent


def test_nothing_is_read_ahead_on_a_server(served: ServerModel) -> None:
    """A question still being typed stays on this computer."""
    sends: list[ServerSend] = []
    served.record_send = sends.append

    def source(request: object, cancel: threading.Event) -> list[SourcePassage]:
        return [SourcePassage("Footnote runs Phi-3 locally.", "notes.md", "document")]

    request = TurnRequest(SYSTEM, [], "What does Footnote", GREEDY)
    assert ChatSession(served).read_ahead(request, threading.Event(), source) == 0  # type: ignore[arg-type]
    assert sends == []
