"""HTTP to a model server with an OpenAI-compatible API (llama.cpp's
``llama-server``, vLLM): what it serves, its tokenizer, and completions
streamed over Server-Sent Events.

Every failure becomes one typed :class:`~engine.errors.ServerError`
(``engine.server_failures``).

Stop: a stream is read on a helper thread and handed over through a queue, so
the engine thread notices Stop within ``CANCEL_POLL_S`` even while the server
is silent (reading a long prompt, or stalled); the connection is then closed,
which makes llama.cpp's server abandon the request.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import (
    ServerError,
    ServerModelUnknown,
    ServerStreamBroken,
    ServerTimedOut,
    ServerUnsuitable,
)
from engine.model_backend import Written
from engine.server_address import ServerAddress
from engine.server_failures import status_error, transport_error
from engine.server_stream import (
    CANCEL_POLL_S,
    SocketCloser,
    StreamEnd,
    read_llama_stream,
    read_ollama_stream,
    read_openai_stream,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
# Requests that answer at once (models, props, tokenize).
REQUEST_TIMEOUT_S = 30.0
# A completion's first byte waits for the whole prompt to be read (a long
# prompt on a busy server takes minutes); after that, tokens come steadily.
FIRST_BYTE_TIMEOUT_S = 300.0
STALL_TIMEOUT_S = 60.0
# When the server names no context size (Ollama, LM Studio): Phi-3-mini's.
DEFAULT_SERVER_CONTEXT_TOKENS = 4096


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
        # Completions: a fresh connection each (see engine.server_stream.SocketCloser).
        self._streams = httpx.Client(
            base_url=address.base_url,
            headers=headers,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._kind = "openai"
        self._context_tokens = DEFAULT_SERVER_CONTEXT_TOKENS

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
        kind = "llama.cpp" if props else ("vllm" if context else self._ollama_or_openai())
        self._kind = kind
        if props:
            settings = props.get("default_generation_settings") or {}
            context = int(settings.get("n_ctx") or 0)
        self._context_tokens = context or DEFAULT_SERVER_CONTEXT_TOKENS
        return ServerInfo(
            kind=kind,
            models=models,
            context_tokens=self._context_tokens,
            chat_template=str(props.get("chat_template") or ""),
            bos_token=str(props.get("bos_token") or ""),
            eos_token=str(props.get("eos_token") or ""),
            has_tokenizer=kind in ("llama.cpp", "vllm"),
        )

    def _ollama_or_openai(self) -> str:
        """Ollama says its version at /api/version; other servers answer 404."""
        try:
            version = self._get_json("/api/version")
        except (ServerModelUnknown, ServerUnsuitable):
            return "openai"
        return "ollama" if isinstance(version, dict) and "version" in version else "openai"

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
    ) -> Iterator[Written | StreamEnd]:
        """Stream the completion of ``prompt`` (token ids where the server
        tokenizes for us, so it never reads our text for control tokens;
        text for one that does not): text pieces,
        then one :class:`StreamEnd`. Returns early, without a StreamEnd,
        when ``cancel`` is set. ``parameters``: the OpenAI fields
        (temperature, max_tokens…), plus llama.cpp's own, which other servers ignore."""
        if self._kind == "ollama":
            body = _ollama_body(self.address.model, prompt, parameters, self._context_tokens)
        elif self._kind == "llama.cpp":
            body = _llama_body(prompt, parameters)
        else:
            body = {
                "model": self.address.model,
                "prompt": prompt,
                "stream": True,
                "stream_options": {"include_usage": True},
                # vLLM: the sampled token ids with the text (see _vllm_token_ids).
                "logprobs": 0,
                "return_tokens_as_token_ids": True,
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
        closer = SocketCloser(stop)
        try:
            path, read = _ROUTES.get(self._kind, ("/v1/completions", read_openai_stream))
            with self._streams.stream(
                "POST",
                path,
                json=body,
                timeout=timeout,
                extensions={"trace": closer.trace},
            ) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    events.put(("error", status_error(self.address, reply.status_code, reply.text)))
                    return
                end = read(reply.iter_lines(), events, stop, self.address.base_url)
            if end is not None:
                events.put(("end", end))
        except ServerError as exc:
            events.put(("error", exc))
        except httpx.HTTPError as exc:
            if not stop.is_set():
                events.put(("error", transport_error(self.address, exc, streaming=True)))
        except Exception as exc:  # a reader thread must always report, never die silently
            log.exception("reading the server's stream failed")
            events.put(("error", ServerStreamBroken(str(exc) or type(exc).__name__)))
        finally:
            closer.done()

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
            raise transport_error(self.address, exc, streaming=False) from exc
        if reply.status_code >= 400:
            raise status_error(self.address, reply.status_code, reply.text)
        try:
            return reply.json()
        except ValueError as exc:
            raise ServerUnsuitable(
                f"The server at {self.address.base_url} answered {path} with something that "
                "is not JSON; is this address an OpenAI-compatible API?",
                detail=reply.text[:2000],
            ) from exc


def _ollama_body(
    model: str, prompt: list[int] | str, parameters: Mapping[str, Any], context_tokens: int
) -> dict[str, Any]:
    """Ollama's own generate request: ``raw``, so Ollama does not wrap our
    rendered prompt in its template a second time (its /v1/completions
    would), with the context size we plan for (Ollama's default is smaller
    and it would cut the prompt's start silently)."""
    options = {
        "num_predict": parameters.get("max_tokens"),
        "temperature": parameters.get("temperature"),
        "top_p": parameters.get("top_p"),
        "top_k": parameters.get("top_k"),
        "min_p": parameters.get("min_p"),
        "repeat_penalty": parameters.get("repeat_penalty"),
        "num_ctx": context_tokens,
    }
    return {
        "model": model,
        "prompt": prompt,
        "raw": True,
        "stream": True,
        "options": {k: v for k, v in options.items() if v is not None},
    }


def _llama_body(prompt: list[int] | str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """llama.cpp's own completion request (its /v1/completions sends text
    only): the sampled token ids come back with the text (``return_tokens``),
    and the prompt stays in the slot's cache (``cache_prompt``) for the next
    turn, which repeats it."""
    body: dict[str, Any] = {
        "prompt": prompt,
        "stream": True,
        "cache_prompt": True,
        "return_tokens": True,
    }
    for key, value in parameters.items():
        if key == "max_tokens":
            body["n_predict"] = value
        elif key != "repetition_penalty":  # vLLM's name for repeat_penalty
            body[key] = value
    return body


_ROUTES = {
    "llama.cpp": ("/completion", read_llama_stream),
    "ollama": ("/api/generate", read_ollama_stream),
}
