"""Where a turn's prompt is read and its answer written: the one seam between
:class:`~engine.turn.ChatSession` and the model that computes.

One path for a message: the session does the turn (history, grounding, the
planner, the prompt, events, Stop) the same way whatever computes it, and
asks a backend only for what differs:

* :class:`~engine.local_backend.LocalBackend`: llama.cpp in this process
  (the default), which manages its KV cache token by token;
* :class:`~engine.server_model.ServerBackend`: a model server with an
  OpenAI-compatible API (llama.cpp's ``llama-server``, vLLM), sent our own
  rendered prompt as token ids, which caches the prompt itself.

Both speak in the model's tokens: the prompt is tokenized by
``engine.prompt_tokens`` with the model's (or the server's) tokenizer, so
the planner counts real tokens and only the chat template makes control
tokens, locally or remote.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from engine.chat_template import ChatFormat
    from engine.events import PromptProgress
    from engine.prompt_tokens import PromptTokenizer
    from engine.sampling import SamplingParams

WriteEnd = Literal["stop", "length"]


@dataclass(frozen=True)
class PromptRead:
    """How reading a prompt went."""

    reused_tokens: int  # found in the cache
    evaluated_tokens: int  # read now
    seconds: float
    complete: bool  # not cut short by Stop


@dataclass(frozen=True)
class Written:
    """A piece of the answer: whole characters, and the tokens sampled for
    them when the backend knows them (a server sends text only: ())."""

    text: str
    tokens: tuple[int, ...] = ()


class PromptModel(Protocol):
    """What the prompt is built with (``engine.prompt_builder``)."""

    @property
    def chat_format(self) -> ChatFormat: ...

    @property
    def prompt_tokenizer(self) -> PromptTokenizer: ...

    @property
    def context_tokens(self) -> int: ...

    @property
    def control_tokens(self) -> frozenset[int]: ...


class ModelBackend(Protocol):
    """Reads prompts and writes answers for one model. One call at a time."""

    @property
    def model(self) -> PromptModel: ...

    def prepare_turn(self) -> None:
        """Before a turn (the local model picks its thread count)."""

    def cached_tokens(self) -> list[int]:
        """The tokens the backend holds in its cache, as far as we know."""

    def can_shift(self) -> bool:
        """Whether left-out history can be shifted out of the cache."""

    def read(
        self,
        tokens: list[int],
        cancel: threading.Event,
        batch_tokens: int,
        *,
        between: threading.Event | None = None,
    ) -> Generator[PromptProgress, None, PromptRead]:
        """Read ``tokens`` but the last into the cache, reusing what it holds.
        ``cancel`` stops it at once (in the middle of a batch if need be);
        ``between`` at the end of the batch in progress, which stays cached."""

    def write(
        self,
        tokens: list[int],
        sampling: SamplingParams,
        cancel: threading.Event,
    ) -> Generator[Written, None, WriteEnd]:
        """Write what follows ``tokens`` until the model ends its turn
        ("stop") or runs out of room ("length"); the caller closes the
        generator to stop early (Stop, a line break, its own cap)."""

    def answer_tokens(self, text: str, sampled: list[int]) -> list[int]:
        """The tokens the cache holds for an answer written as ``text``."""

    def forget(self) -> None:
        """After a failure: assume nothing is cached."""

    def calibrate(self) -> float:
        """Measure prompt-reading speed (tokens/s) now; 0: not measurable."""

    @property
    def where(self) -> str:
        """For people: where answers are computed ("this computer", a URL)."""

    @property
    def on_this_computer(self) -> bool:
        """Whether prompts stay on this computer (reading ahead may use it)."""
