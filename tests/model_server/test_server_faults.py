"""What goes wrong with a model server, against the real llama.cpp server (and
a real proxy in front of it for a 429 and a slow first byte): each fault is
one typed error with a sentence a person can act on, and an answer cut off
mid-way is kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import (
    SendNotRecorded,
    ServerBusy,
    ServerModelUnknown,
    ServerRefusedKey,
    ServerStreamBroken,
    ServerTimedOut,
    ServerUnreachable,
)
from engine.events import Failed, Finished, Token, TurnEvent
from engine.server_client import ServerAddress
from engine.server_model import ServerModel, ServerSend
from engine.turn import ChatSession, SamplingParams, TurnRequest
from tests.llama_server import (
    ProxyFaults,
    RunningServer,
    fault_proxy,
    free_port,
    running_llama_server,
)

SYSTEM = "You are a helpful assistant."
REQUEST = TurnRequest(SYSTEM, [], "What is Footnote?", SamplingParams(temperature=0.0))


def failed(events: list[TurnEvent]) -> Failed:
    assert isinstance(events[-1], Failed), events[-1]
    return events[-1]


def test_nothing_listening_is_one_sentence() -> None:
    address = ServerAddress(f"http://127.0.0.1:{free_port()}", "phi3")
    with pytest.raises(ServerUnreachable) as caught:
        ServerModel.connect(address)
    assert str(caught.value).startswith(f"Nothing answers at {address.base_url}: start the")
    assert "ConnectError" in caught.value.detail


def test_an_address_that_is_no_url_says_how_to_write_one() -> None:
    with pytest.raises(ServerUnreachable, match=r"write it as http://host:port"):
        ServerAddress("localhost:8080", "phi3")


def test_a_model_the_server_does_not_serve_is_named(llama_server: RunningServer) -> None:
    with pytest.raises(ServerModelUnknown) as caught:
        ServerModel.connect(ServerAddress(llama_server.url, "phi-3-small"))
    assert "“phi-3-small”" in str(caught.value)
    assert f"it serves {llama_server.alias}" in str(caught.value)


def test_the_v1_suffix_of_a_base_url_is_accepted(llama_server: RunningServer) -> None:
    model = ServerModel.connect(ServerAddress(llama_server.url + "/v1/", llama_server.alias))
    model.close()
    assert model.address.base_url == llama_server.url


@pytest.fixture
def keyed_server(tiny_model: Path, tmp_path: Path) -> Iterator[RunningServer]:
    with running_llama_server(tiny_model, tmp_path, api_key="team-secret") as server:
        yield server


def test_a_server_that_wants_a_key(keyed_server: RunningServer) -> None:
    with pytest.raises(ServerRefusedKey, match="wants an API key: set it in Settings"):
        ServerModel.connect(ServerAddress(keyed_server.url, keyed_server.alias))
    with pytest.raises(ServerRefusedKey, match="wants a different API key"):
        ServerModel.connect(ServerAddress(keyed_server.url, keyed_server.alias, "wrong"))
    model = ServerModel.connect(ServerAddress(keyed_server.url, keyed_server.alias, "team-secret"))
    try:
        events = list(ChatSession(model).run(REQUEST, threading.Event()))
        assert isinstance(events[-1], Finished)
    finally:
        model.close()


def test_a_server_that_limits_requests(llama_server: RunningServer) -> None:
    faults = ProxyFaults(status=429)
    with fault_proxy(llama_server, faults) as url:
        model = ServerModel.connect(ServerAddress(url, llama_server.alias))
        try:
            events = list(ChatSession(model).run(REQUEST, threading.Event()))
        finally:
            model.close()
    error = failed(events).error
    assert isinstance(error, ServerBusy) and error.status == 429
    assert "wait a moment and try again" in str(error)
    assert faults.completions == 1  # no retry storm against a limiting server


def test_a_slow_first_byte_times_out_with_a_sentence(llama_server: RunningServer) -> None:
    faults = ProxyFaults(first_byte_delay_s=5.0)
    with fault_proxy(llama_server, faults) as url:
        address = ServerAddress(url, llama_server.alias)
        model = ServerModel.connect(address, first_byte_timeout_s=0.5)
        try:
            started = time.monotonic()
            events = list(ChatSession(model).run(REQUEST, threading.Event()))
        finally:
            model.close()
    error = failed(events).error
    assert isinstance(error, ServerTimedOut)
    assert "did not start answering within 0.5 s" in str(error)
    assert time.monotonic() - started < 3.0


def test_stop_while_the_server_is_silent_returns_at_once(llama_server: RunningServer) -> None:
    faults = ProxyFaults(first_byte_delay_s=5.0)
    with fault_proxy(llama_server, faults) as url:
        model = ServerModel.connect(ServerAddress(url, llama_server.alias))
        try:
            cancel = threading.Event()
            threading.Timer(0.3, cancel.set).start()
            started = time.monotonic()
            events = list(ChatSession(model).run(REQUEST, cancel))
            waited = time.monotonic() - started
        finally:
            model.close()
    assert isinstance(events[-1], Finished) and events[-1].reason == "cancelled"
    assert waited < 1.5


def test_a_server_killed_mid_answer_keeps_the_answer_so_far(
    looping_server: RunningServer,
) -> None:
    model = ServerModel.connect(ServerAddress(looping_server.url, looping_server.alias))
    try:
        events: list[TurnEvent] = []
        for event in ChatSession(model).run(REQUEST, threading.Event()):
            events.append(event)
            if sum(isinstance(e, Token) for e in events) == 5:
                looping_server.kill()
    finally:
        model.close()
    end = failed(events)
    assert isinstance(end.error, ServerStreamBroken)
    assert "what it wrote is kept" in str(end.error)
    written = "".join(e.text for e in events if isinstance(e, Token))
    assert end.partial is not None and end.partial.reason == "failed"
    assert end.partial.text == written.rstrip() and len(written) > 0


def test_a_send_the_ledger_cannot_record_is_not_made(llama_server: RunningServer) -> None:
    faults = ProxyFaults()
    with fault_proxy(llama_server, faults) as url:

        def ledger_full(send: ServerSend) -> None:
            raise OSError("Footnote cannot write its privacy ledger, so it sent nothing.")

        model = ServerModel.connect(ServerAddress(url, llama_server.alias), record_send=ledger_full)
        try:
            events = list(ChatSession(model).run(REQUEST, threading.Event()))
        finally:
            model.close()
    error = failed(events).error
    assert isinstance(error, SendNotRecorded)
    assert str(error) == "Footnote cannot write its privacy ledger, so it sent nothing."
    assert faults.completions == 0


def test_a_stream_that_stalls_mid_answer_keeps_the_answer_so_far(
    llama_server: RunningServer,
) -> None:
    # Request 1 reads the prompt; request 2 writes the answer and hangs after ~2 tokens.
    faults = ProxyFaults(stall_request=2, stall_after_bytes=600)
    with fault_proxy(llama_server, faults) as url:
        model = ServerModel.connect(ServerAddress(url, llama_server.alias), stall_timeout_s=0.5)
        try:
            started = time.monotonic()
            events = list(ChatSession(model).run(REQUEST, threading.Event()))
            waited = time.monotonic() - started
        finally:
            model.close()
    end = failed(events)
    assert isinstance(end.error, ServerTimedOut)
    assert "stopped sending the answer for 0.5 s; what it wrote is kept" in str(end.error)
    written = "".join(e.text for e in events if isinstance(e, Token))
    assert written and end.partial is not None and end.partial.text == written.rstrip()
    assert waited < 5.0
