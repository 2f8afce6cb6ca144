"""HTTP to a model server with an OpenAI-compatible API (llama.cpp's
``llama-server``, vLLM): what it serves, its tokenizer, and completions
streamed over Server-Sent Events.

Every failure becomes one typed :class:`~engine.errors.ServerError` whose
message says what to do (start the server, check the key, the model name,
wait), with the HTTP status and the server's own words in ``detail``.

Stop: a stream is read on a helper thread and handed over through a queue, so
the engine thread notices Stop within ``CANCEL_POLL_S`` even while the server
is silent (reading a long prompt, or stalled); the connection is then closed,
which makes llama.cpp's server abandon the request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from engine.errors import (
    ServerBusy,
    ServerError,
    ServerModelUnknown,
    ServerRefusedKey,
    ServerStreamBroken,
    ServerTimedOut,
    ServerUnreachable,
    ServerUnsuitable,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
# Requests that answer at once (models, props, tokenize).
REQUEST_TIMEOUT_S = 30.0
# A completion's first byte waits for the whole prompt to be read (a long
# prompt on a busy server takes minutes); after that, tokens come steadily.
FIRST_BYTE_TIMEOUT_S = 300.0
STALL_TIMEOUT_S = 60.0
CANCEL_POLL_S = 0.02
# When the server names no context size (Ollama, LM Studio): Phi-3-mini's.
DEFAULT_SERVER_CONTEXT_TOKENS = 4096


@dataclass(frozen=True)
class ServerAddress:
    """Where answers are computed: an OpenAI-compatible API's base URL (with or
    without its ``/v1``), the model name, and an API key if the server wants one."""

    base_url: str
    model: str
    api_key: str | None = None

    def __post_init__(self) -> None:
        url = self.base_url.strip().rstrip("/")
        if url.endswith("/v1"):
            url = url[: -len("/v1")]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ServerUnreachable(
                f"“{self.base_url}” is not a server address: write it as "
                "http://host:port (for example http://127.0.0.1:8080)."
            )
        object.__setattr__(self, "base_url", url)

    @property
    def label(self) -> str:
        """For people: where answers are computed."""
        return f"{self.base_url} ({self.model})"


@dataclass(frozen=True)
class ServerInfo:
    """What a server says about itself (read once when connecting)."""

    kind: str  # "llama.cpp", "vllm" or "openai" (anything else)
    models: tuple[str, ...]  # the model names it lists
    context_tokens: int
    chat_template: str  # "" when it does not say
    bos_token: str
    eos_token: str
    has_tokenizer: bool


@dataclass(frozen=True)
class StreamEnd:
    """How a streamed completion ended, with the server's own counts when it gives them."""

    finish_reason: str  # "stop", "length", or "" if the server did not say
    cached_prompt_tokens: int | None  # prompt tokens the server reused from its cache
    prompt_tokens: int | None
    prompt_seconds: float | None  # the server's time reading the prompt


class ServerClient:
    """One server, one model. Thread-compatible: one request at a time."""

    def __init__(
        self,
        address: ServerAddress,
        *,
        first_byte_timeout_s: float = FIRST_BYTE_TIMEOUT_S,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> None:
        import httpx

        self.address = address
        self.first_byte_timeout_s = first_byte_timeout_s
        self.stall_timeout_s = stall_timeout_s
        headers = {"Authorization": f"Bearer {address.api_key}"} if address.api_key else {}
        self._http = httpx.Client(
            base_url=address.base_url,
            headers=headers,
            timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            # A server on the LAN or this machine: a system proxy must not see
            # the conversation (and would break 127.0.0.1).
            trust_env=False,
        )
        # Completions: a fresh connection each (see _SocketCloser).
        self._streams = httpx.Client(
            base_url=address.base_url,
            headers=headers,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._kind = "openai"

    def close(self) -> None:
        self._http.close()
        self._streams.close()

    # ------------------------------------------------------------ about it

    def describe(self) -> ServerInfo:
        """Ask the server what it serves; raises :class:`ServerModelUnknown`
        when it lists models and ours is not among them."""
        listed = self._get_json("/v1/models")
        entries = listed.get("data") if isinstance(listed, dict) else None
        models = tuple(str(m.get("id")) for m in entries or () if isinstance(m, dict))
        context = 0
        for entry in entries or ():
            if isinstance(entry, dict) and entry.get("id") == self.address.model:
                context = int(entry.get("max_model_len") or 0)  # vLLM says it here
        if models and self.address.model not in models:
            raise ServerModelUnknown(
                f"The server at {self.address.base_url} does not serve a model named "
                f"“{self.address.model}”; it serves {', '.join(models)}. Use one of those names.",
                detail=json.dumps(listed)[:2000],
            )
        props = self._llama_props()
        kind = "llama.cpp" if props else ("vllm" if context else "openai")
        self._kind = kind
        if props:
            settings = props.get("default_generation_settings") or {}
            context = int(settings.get("n_ctx") or 0)
        return ServerInfo(
            kind=kind,
            models=models,
            context_tokens=context or DEFAULT_SERVER_CONTEXT_TOKENS,
            chat_template=str(props.get("chat_template") or ""),
            bos_token=str(props.get("bos_token") or ""),
            eos_token=str(props.get("eos_token") or ""),
            has_tokenizer=kind in ("llama.cpp", "vllm"),
        )

    def _llama_props(self) -> dict[str, Any]:
        """llama.cpp's server describes itself at /props; others answer 404."""
        try:
            props = self._get_json("/props")
        except (ServerModelUnknown, ServerUnsuitable):
            return {}
        if isinstance(props, dict) and "default_generation_settings" in props:
            return props
        return {}

    # ------------------------------------------------------------ tokenizer

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        """The server's tokens for ``text``. ``parse_special`` False: markers
        in it stay text (llama.cpp's server honours it; vLLM parses them
        always, which engine.prompt_tokens catches and breaks)."""
        if self._kind == "llama.cpp":
            body: dict[str, Any] = {
                "content": text,
                "add_special": add_special,
                "parse_special": parse_special,
            }
        else:
            body = {"model": self.address.model, "prompt": text, "add_special_tokens": add_special}
        reply = self._post_json("/tokenize", body)
        tokens = reply.get("tokens") if isinstance(reply, dict) else None
        if not isinstance(tokens, list):
            raise ServerUnsuitable(
                f"The server at {self.address.base_url} did not tokenize a text as "
                "llama.cpp's server or vLLM do; Footnote needs one of those.",
                detail=str(reply)[:2000],
            )
        return [int(t) for t in tokens]

    def offers_tokenizer(self) -> bool:
        """Whether a server of unknown kind tokenizes as vLLM does."""
        try:
            self.tokenize("x", add_special=False, parse_special=False)
        except (ServerModelUnknown, ServerUnsuitable):
            return False
        return True

    def detokenize(self, tokens: list[int]) -> str:
        if self._kind == "llama.cpp":
            reply = self._post_json("/detokenize", {"tokens": tokens})
            return str(reply.get("content", ""))
        reply = self._post_json("/detokenize", {"model": self.address.model, "tokens": tokens})
        return str(reply.get("prompt", ""))

    # ------------------------------------------------------------ completion

    def complete(
        self,
        prompt: list[int] | str,
        parameters: Mapping[str, Any],
        cancel: threading.Event,
    ) -> Iterator[str | StreamEnd]:
        """Stream the completion of ``prompt`` (token ids where the server
        tokenizes for us, so it never reads our text for control tokens;
        text for one that does not): text pieces,
        then one :class:`StreamEnd`. Returns early, without a StreamEnd,
        when ``cancel`` is set. ``parameters``: the OpenAI fields
        (temperature, max_tokens…), plus llama.cpp's own, which other servers ignore."""
        body = {
            "model": self.address.model,
            "prompt": prompt,
            "stream": True,
            "stream_options": {"include_usage": True},
            # llama.cpp's server: keep this prompt in the slot's cache, so the
            # next turn, which repeats it, reads only its new tokens.
            "cache_prompt": True,
            **parameters,
        }
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read_stream, args=(body, events, stop), name="server-stream", daemon=True
        )
        reader.start()
        first = True
        deadline = time.monotonic() + self.first_byte_timeout_s
        try:
            while True:
                try:
                    kind, value = events.get(timeout=CANCEL_POLL_S)
                except queue.Empty:
                    if cancel.is_set():
                        return
                    if time.monotonic() > deadline:
                        raise self._timed_out(first) from None
                    continue
                deadline = time.monotonic() + self.stall_timeout_s
                if kind == "error":
                    raise value
                if kind == "end":
                    yield value
                    return
                first = False
                yield value
                if cancel.is_set():
                    return
        finally:
            stop.set()

    def _timed_out(self, first: bool) -> ServerTimedOut:
        if first:
            return ServerTimedOut(
                f"The server at {self.address.base_url} did not start answering within "
                f"{self.first_byte_timeout_s:g} s. It may be busy or overloaded; try again, or "
                "check it is running."
            )
        return ServerTimedOut(
            f"The server at {self.address.base_url} stopped sending the answer for "
            f"{self.stall_timeout_s:g} s; what it wrote is kept. Try again."
        )

    def _read_stream(
        self, body: dict[str, Any], events: queue.Queue[tuple[str, Any]], stop: threading.Event
    ) -> None:
        """On the helper thread: post, then queue what comes (or the error)."""
        import httpx

        timeout = httpx.Timeout(
            self.first_byte_timeout_s + self.stall_timeout_s, connect=CONNECT_TIMEOUT_S
        )
        closer = _SocketCloser(stop)
        try:
            with self._streams.stream(
                "POST",
                "/v1/completions",
                json=body,
                timeout=timeout,
                extensions={"trace": closer.trace},
            ) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    events.put(("error", self._status_error(reply.status_code, reply.text)))
                    return
                end = self._queue_chunks(reply.iter_lines(), events, stop)
            if end is not None:
                events.put(("end", end))
        except ServerError as exc:
            events.put(("error", exc))
        except httpx.HTTPError as exc:
            if not stop.is_set():
                events.put(("error", self._transport_error(exc, streaming=True)))
        except Exception as exc:  # a reader thread must always report, never die silently
            log.exception("reading the server's stream failed")
            events.put(("error", ServerStreamBroken(str(exc) or type(exc).__name__)))
        finally:
            closer.done()

    def _queue_chunks(
        self, lines: Iterator[str], events: queue.Queue[tuple[str, Any]], stop: threading.Event
    ) -> StreamEnd | None:
        """Parse the SSE lines into text pieces on ``events``; the end, or
        None when ``stop`` cut it short."""
        url = self.address.base_url
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
                    events.put(("text", choice["text"]))
                finish = choice.get("finish_reason") or finish
        if stop.is_set():
            return None
        if not finish:
            raise ServerStreamBroken(
                f"The server at {url} ended the answer early, without saying why; what it "
                "wrote is kept. Try again."
            )
        return _stream_end(finish, usage, timings)

    # ------------------------------------------------------------ plumbing

    def _get_json(self, path: str) -> Any:
        return self._request("GET", path, None)

    def _post_json(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("POST", path, body)

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        import httpx

        try:
            reply = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, streaming=False) from exc
        if reply.status_code >= 400:
            raise self._status_error(reply.status_code, reply.text)
        try:
            return reply.json()
        except ValueError as exc:
            raise ServerUnsuitable(
                f"The server at {self.address.base_url} answered {path} with something that "
                "is not JSON; is this address an OpenAI-compatible API?",
                detail=reply.text[:2000],
            ) from exc

    def _status_error(self, status: int, text: str) -> ServerError:
        url, model = self.address.base_url, self.address.model
        detail = f"HTTP {status}: {text[:2000]}"
        if status in (401, 403):
            wanted = "a different API key" if self.address.api_key else "an API key"
            return ServerRefusedKey(
                f"The server at {url} wants {wanted}: set it in Settings → Model "
                "(or --api-key-env for the command line).",
                detail=detail,
                status=status,
            )
        if status == 404:
            return ServerModelUnknown(
                f"The server at {url} does not know the model “{model}” (or this request): "
                "check the model name, and that the address is its API's base URL.",
                detail=detail,
                status=status,
            )
        if status in (429, 503):
            return ServerBusy(
                f"The server at {url} is busy or limits how often it is asked (HTTP {status}); "
                "wait a moment and try again.",
                detail=detail,
                status=status,
            )
        return ServerUnsuitable(
            f"The server at {url} refused the request (HTTP {status}); its reply is in the "
            "details.",
            detail=detail,
            status=status,
        )

    def _transport_error(self, exc: Exception, *, streaming: bool) -> ServerError:
        import httpx

        url = self.address.base_url
        detail = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ServerUnreachable(
                f"Nothing answers at {url}: start the model server, or check the address in "
                "Settings → Model.",
                detail=detail,
            )
        if isinstance(exc, httpx.TimeoutException):
            return ServerTimedOut(
                f"The server at {url} took too long to answer; it may be busy. Try again.",
                detail=detail,
            )
        if streaming:
            return ServerStreamBroken(
                f"The connection to the server at {url} broke during the answer; what it "
                "wrote is kept. Check the server, then try again.",
                detail=detail,
            )
        return ServerUnreachable(
            f"The connection to {url} failed: check the server and the address.", detail=detail
        )


class _SocketCloser:
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
