"""Parsing a server's answer stream: the two formats servers send, an error
inside the stream, and a stream that stops without its end. (The real
llama.cpp server's stream is read in tests/model_server/.)"""

from __future__ import annotations

import json
import queue
import threading
from typing import Any

import pytest

from engine.errors import ServerStreamBroken
from engine.server_stream import StreamEnd, read_ollama_stream, read_openai_stream

URL = "http://gpu-box:11434"


def texts(events: queue.Queue[tuple[str, Any]]) -> list[str]:
    out = []
    while not events.empty():
        kind, value = events.get()
        assert kind == "text"
        out.append(value.text)
    return out


def test_ollama_json_lines() -> None:
    """The shape Ollama's /api/generate streams (its API documentation)."""
    lines = [
        json.dumps({"model": "phi3:mini", "response": "Foot", "done": False}),
        "",
        json.dumps({"model": "phi3:mini", "response": "note", "done": False}),
        json.dumps(
            {
                "response": "",
                "done": True,
                "done_reason": "length",
                "prompt_eval_count": 120,
                "prompt_eval_duration": 1_500_000_000,
            }
        ),
    ]
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    end = read_ollama_stream(iter(lines), events, threading.Event(), URL)
    assert texts(events) == ["Foot", "note"]
    assert end == StreamEnd("length", None, 120, 1.5)


def test_an_error_inside_a_stream_is_a_sentence() -> None:
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    lines = [json.dumps({"response": "Par"}), json.dumps({"error": "model runner crashed"})]
    with pytest.raises(ServerStreamBroken) as caught:
        read_ollama_stream(iter(lines), events, threading.Event(), URL)
    assert "what it wrote is kept" in str(caught.value)
    assert caught.value.detail == "model runner crashed"
    assert texts(events) == ["Par"]


def test_an_openai_stream_that_ends_without_its_end_is_broken() -> None:
    chunk = {"choices": [{"text": "Hal", "finish_reason": None}]}
    lines = [f"data: {json.dumps(chunk)}", ""]
    with pytest.raises(ServerStreamBroken, match="ended the answer early"):
        read_openai_stream(iter(lines), queue.Queue(), threading.Event(), URL)
