"""Reading a model server's answer as it streams: OpenAI's Server-Sent Events
(llama.cpp's server, vLLM, LM Studio) or Ollama's JSON lines, into text
pieces and one :class:`StreamEnd`; and the socket closer that makes Stop
take effect while the server is silent."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ServerError, ServerStreamBroken
from engine.model_backend import Written

CANCEL_POLL_S = 0.02


@dataclass(frozen=True)
class StreamEnd:
    """How a streamed completion ended, with the server's own counts when it gives them."""

    finish_reason: str  # "stop", "length", or "" if the server did not say
    cached_prompt_tokens: int | None  # prompt tokens the server reused from its cache
    prompt_tokens: int | None
    prompt_seconds: float | None  # the server's time reading the prompt


def read_openai_stream(
    lines: Iterator[str], events: queue.Queue[tuple[str, Any]], stop: threading.Event, url: str
) -> StreamEnd | None:
    """OpenAI's completions stream (Server-Sent Events) as text pieces on
    ``events``; its end, or None when ``stop`` cut it short."""
    finish, usage, timings = "", None, None
    for line in lines:
        if stop.is_set():
            return None
        data = _sse_data(line)
        if data is None:
            continue
        if data == "[DONE]":
            break
        chunk = _parse_chunk(data, url)
        if "error" in chunk:
            raise _stream_error(chunk["error"], url)
        usage = chunk.get("usage") or usage
        timings = chunk.get("timings") or timings
        for choice in chunk.get("choices") or ():
            if choice.get("text"):
                events.put(("text", Written(choice["text"], _vllm_token_ids(choice))))
            finish = choice.get("finish_reason") or finish
    if stop.is_set():
        return None
    if not finish:
        raise ServerStreamBroken(
            f"The server at {url} ended the answer early, without saying why; what it "
            "wrote is kept. Try again."
        )
    return _stream_end(finish, usage, timings)


def read_llama_stream(
    lines: Iterator[str], events: queue.Queue[tuple[str, Any]], stop: threading.Event, url: str
) -> StreamEnd | None:
    """llama.cpp's own ``/completion`` stream (SSE): text pieces *with the
    token ids sampled*, so the next prompt repeats exactly what the server's
    cache holds (text tokenized again rarely gives back the sampled tokens);
    its end, or None when ``stop`` cut it short."""
    for line in lines:
        if stop.is_set():
            return None
        data = _sse_data(line)
        if data is None:
            continue
        chunk = _parse_chunk(data, url)
        if "error" in chunk:
            raise _stream_error(chunk["error"], url)
        text, tokens = chunk.get("content") or "", chunk.get("tokens") or []
        if text or tokens:
            events.put(("text", Written(text, tuple(int(t) for t in tokens))))
        if chunk.get("stop"):
            timings = chunk.get("timings") or {}
            prompt_ms = timings.get("prompt_ms")
            cached = timings.get("cache_n")
            return StreamEnd(
                finish_reason="length" if chunk.get("stop_type") == "limit" else "stop",
                cached_prompt_tokens=int(cached) if cached is not None else None,
                prompt_tokens=chunk.get("tokens_evaluated"),
                prompt_seconds=float(prompt_ms) / 1000 if prompt_ms is not None else None,
            )
    if stop.is_set():
        return None
    raise ServerStreamBroken(
        f"The server at {url} ended the answer early, without saying why; what it wrote is "
        "kept. Try again."
    )


def read_ollama_stream(
    lines: Iterator[str], events: queue.Queue[tuple[str, Any]], stop: threading.Event, url: str
) -> StreamEnd | None:
    """Ollama's own stream (``/api/generate``: one JSON object a line) as
    text pieces on ``events``; its end, or None when ``stop`` cut it short."""
    for line in lines:
        if stop.is_set():
            return None
        if not line.strip():
            continue
        chunk = _parse_chunk(line, url)
        if "error" in chunk:
            raise _stream_error(chunk["error"], url)
        if chunk.get("response"):
            events.put(("text", Written(chunk["response"])))
        if chunk.get("done"):
            seconds = chunk.get("prompt_eval_duration")
            return StreamEnd(
                finish_reason=str(chunk.get("done_reason") or "stop"),
                cached_prompt_tokens=None,
                prompt_tokens=chunk.get("prompt_eval_count"),
                prompt_seconds=float(seconds) / 1e9 if seconds is not None else None,
            )
    if stop.is_set():
        return None
    raise ServerStreamBroken(
        f"The server at {url} ended the answer early, without saying why; what it wrote is "
        "kept. Try again."
    )


class SocketCloser:
    """Shuts a stream's socket as soon as ``stop`` is set, so a read blocked on
    a silent server (reading a long prompt, stalled, or slow to send even its
    headers) returns at once: closing the socket from another thread would
    not wake the read. The socket is caught as httpcore connects it (its
    documented ``trace`` extension); streams use connections of their own,
    never one kept alive from an earlier request, so it always connects."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._socket: socket.socket | None = None
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="server-stream-stop", daemon=True)
        self._thread.start()

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                self._socket = sock

    def _watch(self) -> None:
        while not self._finished.wait(CANCEL_POLL_S):
            if self._stop.is_set():
                if self._socket is not None:
                    with contextlib.suppress(OSError):  # already closed
                        self._socket.shutdown(socket.SHUT_RDWR)
                return

    def done(self) -> None:
        self._finished.set()


def _sse_data(line: str) -> str | None:
    """The payload of an SSE ``data:`` line; None for comments, blank lines
    and other fields."""
    if not line.startswith("data:"):
        if line.startswith("error:"):  # llama.cpp's server, on a failure mid-stream
            return line[len("error:") :].strip() or None
        return None
    return line[len("data:") :].strip()


def _parse_chunk(data: str, url: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise ServerStreamBroken(
            f"The server at {url} sent a part of the answer that is not JSON; what it wrote "
            "is kept. Try again.",
            detail=data[:2000],
        ) from exc
    if not isinstance(chunk, dict):
        return {}
    if "message" in chunk and "choices" not in chunk and "code" in chunk:
        return {"error": chunk}  # llama.cpp's bare error object
    return chunk


def _stream_error(error: Any, url: str) -> ServerError:
    message = error.get("message", "") if isinstance(error, dict) else str(error)
    return ServerStreamBroken(
        f"The server at {url} reported an error during the answer; what it wrote is kept. "
        "Try again.",
        detail=str(message)[:2000],
    )


def _stream_end(finish: str, usage: Any, timings: Any) -> StreamEnd:
    cached = prompt = None
    seconds = None
    if isinstance(usage, dict):
        prompt = usage.get("prompt_tokens")
        details = usage.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if isinstance(timings, dict):
        cached = timings.get("cache_n", cached)
        if timings.get("prompt_ms") is not None:
            seconds = float(timings["prompt_ms"]) / 1000
    return StreamEnd(
        finish_reason=finish,
        cached_prompt_tokens=int(cached) if cached is not None else None,
        prompt_tokens=int(prompt) if prompt is not None else None,
        prompt_seconds=seconds,
    )


def _vllm_token_ids(choice: Mapping[str, Any]) -> tuple[int, ...]:
    """vLLM's sampled token ids, when asked for (``logprobs`` with
    ``return_tokens_as_token_ids``: tokens written as "token_id:N")."""
    logprobs = choice.get("logprobs")
    tokens = logprobs.get("tokens") if isinstance(logprobs, dict) else None
    ids = []
    for token in tokens or ():
        if not (isinstance(token, str) and token.startswith("token_id:")):
            return ()
        ids.append(int(token[len("token_id:") :]))
    return tuple(ids)
