"""A model on a server (an OpenAI-compatible API) as the model of a chat turn.

How the prompt travels, and why (hostile input): Footnote renders the prompt
itself with the model's chat template (the server's own, from llama.cpp's
``/props``; Phi-3's for a Phi model on vLLM), tokenizes it piece by piece
with the *server's* tokenizer exactly as it does locally
(``engine.prompt_tokens``: only the template's markers become control
tokens, content is tokenized as plain text), and sends the token ids to
``/v1/completions``. The server therefore never reads our text for control
tokens: a ``<|user|>`` inside a web page stays the characters it is, on the
server as here. (``/v1/chat/completions`` would hand the server the
contents as text to format with its own template; llama.cpp's server then
tokenizes the whole prompt with special tokens parsed, and a forged turn in
a fetched page would become real.) llama.cpp's ``/tokenize`` can keep
markers as text (``parse_special: false``); vLLM's cannot, so there every
marker-like text in content (``<|...|>``, ``<s>``, ``[INST]``…) is broken
with a zero-width space before it is tokenized.

Privacy: with a server set, the whole prompt (system prompt, the
conversation, the question and its sources) and the answer pass through
that server on every turn, and the app's privacy ledger records each send
(``record_send``). Nothing else changes: search, documents and the
conversation store stay on this computer.

Prefix reuse: llama.cpp's server keeps the last prompt of each slot
(``cache_prompt: true``) and vLLM caches prefixes; the session keeps the
prompt a byte-stable prefix across turns exactly as locally, and the
server's own count of reused tokens (``timings.cache_n`` / ``usage``)
is what a turn reports.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from engine.chat_template import PHI3_CHAT_TEMPLATE, ChatFormat
from engine.errors import SendNotRecorded, ServerUnsuitable
from engine.events import PromptProgress
from engine.model_backend import PromptRead, WriteEnd, Written
from engine.prompt_cache import shared_prefix
from engine.prompt_tokens import Marker, PromptTokenizer
from engine.sampling import SamplingParams
from engine.server_client import ServerAddress, ServerClient, ServerInfo, StreamEnd
from engine.stand_in_tokens import StandInTokenizer

log = logging.getLogger(__name__)

# Tokenized texts kept (system prompt, history, passages repeat every turn).
TOKENIZE_CACHE_ENTRIES = 4096
# What a marker looks like in a chat template (Phi, ChatML, Llama 3, Gemma…).
_MARKER_LIKE = re.compile(
    r"<\|[^<>|\s]{1,40}\|>|</?s>|<unk>|\[/?INST\]|<(?:start|end)_of_turn>|<\|?im_(?:start|end)\|?>"
)
_PHI3_MARKERS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>")
_ZERO_WIDTH_SPACE = "\u200b"


@dataclass(frozen=True)
class ServerSend:
    """One prompt about to go to the server (for the privacy ledger)."""

    url: str
    model: str
    prompt_tokens: int


class ServerModel:
    """A served model as :class:`~engine.turn.ChatSession` uses it: chat
    format, tokenizer, context size. Connect with :meth:`connect`."""

    def __init__(
        self,
        client: ServerClient,
        info: ServerInfo,
        chat_format: ChatFormat,
        *,
        record_send: Callable[[ServerSend], None] | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.client = client
        self.info = info
        self.chat_format = chat_format
        self.record_send = record_send
        self.notes = notes
        self._tokenized: OrderedDict[tuple[str, bool, bool], list[int]] = OrderedDict()
        self._lock = threading.Lock()  # the tokenizer cache: the app may count from two threads
        # A server without a tokenizer gets text; we count in stand-in tokens.
        self.stand_in = (
            None if info.has_tokenizer else StandInTokenizer(_template_markers(chat_format))
        )
        self.markers = self._probe_markers()

    @classmethod
    def connect(
        cls,
        address: ServerAddress,
        *,
        record_send: Callable[[ServerSend], None] | None = None,
        **client_options: float,
    ) -> ServerModel:
        """Ask the server what it serves and how it tokenizes. Raises a typed
        :class:`~engine.errors.ServerError` (unreachable, key refused, model
        unknown, no tokenizer)."""
        client = ServerClient(address, **client_options)
        try:
            info = client.describe()
            if not info.has_tokenizer and client.offers_tokenizer():
                info = dataclasses.replace(info, has_tokenizer=True)
            # Whether the server's tokenizer starts a text with a BOS token:
            # our prompt then starts with one too (a server given text adds its own).
            add_bos = info.has_tokenizer and bool(
                client.tokenize("", add_special=True, parse_special=False)
            )
            chat_format, notes = _chat_format(info, address, add_bos=add_bos)
            if not info.has_tokenizer:
                notes += (
                    f"The server at {address.base_url} does not share its tokenizer: prompt "
                    "sizes are estimated, with a margin.",
                )
            return cls(client, info, chat_format, record_send=record_send, notes=notes)
        except BaseException:
            client.close()
            raise

    # ------------------------------------------------------------ as a model

    @property
    def address(self) -> ServerAddress:
        return self.client.address

    @property
    def label(self) -> str:
        """Where answers are computed, for the window and the CLI."""
        return self.address.label

    @property
    def context_tokens(self) -> int:
        return self.info.context_tokens

    @cached_property
    def prompt_tokenizer(self) -> PromptTokenizer:
        return PromptTokenizer(self, self.markers)

    @property
    def control_tokens(self) -> frozenset[int]:
        return self.prompt_tokenizer.marker_ids

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        """The server's tokens for ``text`` (cached: the same texts come back
        every turn). ``special`` False: nothing in it becomes a control token."""
        if not special and not self.parses_special_as_asked:
            text = break_markers(text)
        if self.stand_in is not None:
            # The server adds its own BOS to a text prompt.
            return self.stand_in.tokenize(text, special=special)
        key = (text, add_bos, special)
        with self._lock:
            if key in self._tokenized:
                self._tokenized.move_to_end(key)
                return list(self._tokenized[key])
        tokens = self.client.tokenize(text, add_special=add_bos, parse_special=special)
        with self._lock:
            self._tokenized[key] = tokens
            while len(self._tokenized) > TOKENIZE_CACHE_ENTRIES:
                self._tokenized.popitem(last=False)
        return list(tokens)

    @property
    def parses_special_as_asked(self) -> bool:
        """llama.cpp's /tokenize can keep markers as text; vLLM's cannot."""
        return self.info.kind == "llama.cpp"

    def prompt_for(self, tokens: list[int]) -> list[int] | str:
        """What goes to the server: token ids, or for a server without a
        tokenizer the text they stand for."""
        return tokens if self.stand_in is None else self.stand_in.text(tokens)

    def backend(self) -> ServerBackend:
        return ServerBackend(self)

    def close(self) -> None:
        self.client.close()

    def _probe_markers(self) -> dict[int, Marker]:
        """The template's markers as the server's tokenizer sees them: a text
        that comes back as one token is a control token; whether it eats the
        whitespace after (before) it is seen by tokenizing it beside some.
        (Stand-in markers keep all whitespace: the text goes as it is.)"""
        if self.stand_in is not None:
            return {t: Marker(t, text, False, False) for text, t in self.stand_in.markers.items()}
        texts = _template_markers(self.chat_format)
        plain = self.client.tokenize("x", add_special=False, parse_special=False)
        markers: dict[int, Marker] = {}
        for text in sorted(texts):
            ids = self.client.tokenize(text, add_special=False, parse_special=True)
            if len(ids) != 1:
                continue
            token = ids[0]
            after = self.client.tokenize(text + "\nx", add_special=False, parse_special=True)
            before = self.client.tokenize("x \n" + text, add_special=False, parse_special=True)
            markers[token] = Marker(
                token,
                text,
                strips_before=before == [*plain, token],
                strips_after=after == [token, *plain],
            )
        return markers


class ServerBackend:
    """Reads prompts and writes answers on the server (engine.model_backend)."""

    def __init__(self, model: ServerModel) -> None:
        self.model = model
        # What we know the server's cache holds: the last prompt we sent
        # and the answer after it.
        self._cached: list[int] = []

    @property
    def where(self) -> str:
        return self.model.label

    @property
    def on_this_computer(self) -> bool:
        return False

    def prepare_turn(self) -> None:
        pass

    def cached_tokens(self) -> list[int]:
        return list(self._cached)

    def can_shift(self) -> bool:
        # The server manages its own cache; left-out history is read again there.
        return False

    def read(
        self,
        tokens: list[int],
        cancel: threading.Event,
        batch_tokens: int,  # noqa: ARG002 (the server reads in its own batches)
        *,
        between: threading.Event | None = None,  # noqa: ARG002 (only reading ahead, never here)
    ) -> Generator[PromptProgress, None, PromptRead]:
        """Have the server read the prompt (one token written, thrown away),
        so the answer request that follows finds it cached: the turn's
        phases (reading, writing), Stop while reading, the prompt speed and
        reading ahead work as they do locally."""
        known = shared_prefix(self._cached, tokens)
        started = time.perf_counter()
        end: StreamEnd | None = None
        self._send(tokens)
        for item in self.model.client.complete(
            self.model.prompt_for(tokens), {"max_tokens": 1, "temperature": 0.0}, cancel
        ):
            if isinstance(item, StreamEnd):
                end = item
        seconds = time.perf_counter() - started
        if end is None:  # stopped: assume the server kept nothing new
            return PromptRead(known, 0, seconds, complete=False)
        self._cached = tokens[:-1]
        reused, total = known, len(tokens)
        if self.model.stand_in is None:  # the server's own counts are in our tokens
            if end.cached_prompt_tokens is not None:
                reused = end.cached_prompt_tokens
            if end.prompt_tokens is not None:
                total = end.prompt_tokens
        return PromptRead(
            reused_tokens=reused,
            evaluated_tokens=max(total - reused, 0),
            seconds=end.prompt_seconds if end.prompt_seconds is not None else seconds,
            complete=True,
        )
        yield  # a generator like every backend's read (no progress to report)

    def write(
        self, tokens: list[int], sampling: SamplingParams, cancel: threading.Event
    ) -> Generator[Written, None, WriteEnd]:
        room = self.model.context_tokens - len(tokens)
        limit = min(sampling.max_answer_tokens or room, room)
        parameters: dict[str, Any] = {
            "max_tokens": max(limit, 1),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "min_p": sampling.min_p,
            "repeat_penalty": sampling.repeat_penalty,  # llama.cpp's name
            "repetition_penalty": sampling.repeat_penalty,  # vLLM's
        }
        self._send(tokens)
        self._cached = tokens[:-1]
        for item in self.model.client.complete(self.model.prompt_for(tokens), parameters, cancel):
            if isinstance(item, StreamEnd):
                return "length" if item.finish_reason == "length" else "stop"
            yield item
        return "stop"  # stopped

    def answer_tokens(self, text: str, sampled: list[int]) -> list[int]:
        """The tokens the server sampled (llama.cpp's and vLLM's say), else
        its tokenizer's reading of the text: the next prompt's prefix then
        hits up to where the two differ."""
        tokens = sampled if sampled else (self.model.tokenize(text, add_bos=False) if text else [])
        self._cached = self._cached + tokens
        return tokens

    def forget(self) -> None:
        self._cached = []

    def calibrate(self) -> float:
        return 0.0  # learnt from the server's own timings, turn by turn

    def _send(self, tokens: list[int]) -> None:
        record = self.model.record_send
        if record is None:
            return
        address = self.model.address
        try:  # before the request, as the web fetcher's ledger
            record(ServerSend(address.base_url, address.model, len(tokens)))
        except Exception as exc:  # the app's ledger: its error is its sentence
            raise SendNotRecorded(
                str(exc) or "The privacy ledger could not record this send, so nothing was sent.",
                detail=f"{type(exc).__name__}: {exc}",
            ) from exc


def _template_markers(chat_format: ChatFormat) -> set[str]:
    """Texts in the template (and its BOS/EOS) that look like markers."""
    texts = set(_MARKER_LIKE.findall(chat_format.source))
    texts |= {t for t in (chat_format.bos_token, chat_format.eos_token) if t}
    if "<|assistant|>" in chat_format.source:
        texts |= set(_PHI3_MARKERS)
    return texts


def break_markers(text: str) -> str:
    """``text`` with every marker-like span broken by a zero-width space
    after its first character, so a tokenizer that always parses special
    tokens reads it as characters."""
    return _MARKER_LIKE.sub(lambda m: m.group()[0] + _ZERO_WIDTH_SPACE + m.group()[1:], text)


def _chat_format(
    info: ServerInfo, address: ServerAddress, *, add_bos: bool
) -> tuple[ChatFormat, tuple[str, ...]]:
    """The server's own template (llama.cpp says it), else Phi-3's for a Phi
    model; any other model without a template cannot be prompted safely."""
    common: dict[str, Any] = {
        "bos_token": info.bos_token,
        "eos_token": info.eos_token,
        "add_bos": add_bos,
    }
    if info.chat_template:
        return ChatFormat(info.chat_template, **common), ()
    if "phi" in address.model.lower():
        note = f"The server does not say which chat template {address.model} uses; using Phi-3's."
        return ChatFormat(PHI3_CHAT_TEMPLATE, **common), (note,)
    raise ServerUnsuitable(
        f"The server at {address.base_url} does not say which chat template “{address.model}” "
        "uses, and it is not a Phi model, whose template Footnote knows. Use llama.cpp's "
        "llama-server, which reports its model's template."
    )
