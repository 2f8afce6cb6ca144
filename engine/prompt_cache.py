"""What llama.cpp holds in its KV cache, and how a new prompt reuses most of it.

A follow-up turn's prompt usually *extends* the last one, and llama.cpp keeps
the longest shared token prefix. Two things break that, and this module
handles both:

* **Re-tokenizing.** The model's own answer, tokenized again from its text,
  rarely gives back the tokens it sampled, so the next prompt would diverge
  inside the first earlier answer. :class:`PromptCache` therefore remembers
  the cached prompt as :class:`Segment` s, each a piece starting at a control
  token (``<|user|>``, ``<|end|>``…; see engine.prompt_tokens) with the exact
  tokens that are in the cache, and builds a new prompt's tokens from every
  piece it repeats verbatim.
* **Left-out history.** When a long conversation no longer fits, the oldest
  exchanges are left out (``engine.budget``), and every later token moves to
  an earlier position: without help, everything after the system prompt is
  read again, every turn (measured by bench.engine on a 2-core laptop-class
  CPU: turns 5-8 of a sourced conversation took 61-75 s to the first token
  instead of 15 s). llama.cpp can remove a span from its cache and shift the
  positions of what follows (RoPE-rotating the cached keys, what its server
  calls context shift), so :func:`reuse_cache` does that, and the kept
  history costs nothing. The kept tokens' cache entries were computed while
  the left-out turns were in view; that is the same trade llama.cpp's own
  server makes, and far better for the user than a minute of re-reading.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine import llama_internals
from engine.prompt_tokens import Piece

if TYPE_CHECKING:
    from engine.chat_template import PromptPart
    from engine.model import LocalModel
    from engine.model_backend import PromptModel

log = logging.getLogger(__name__)

# A span is shifted out of the cache only if at least this many tokens after
# it are reused: below that, reading them again is as cheap as the shift.
MIN_SHIFT_REUSE_TOKENS = 16


@dataclass(frozen=True)
class Segment:
    """A piece of the cached prompt and the tokens that stand for it in the cache."""

    piece: Piece
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class Tokenized:
    tokens: list[int]
    segments: tuple[Segment, ...]


class PromptCache:
    """The segments of the last prompt + answer the model evaluated."""

    def __init__(self, model: PromptModel) -> None:
        self._model = model
        self._segments: tuple[Segment, ...] = ()

    @property
    def tokens(self) -> list[int]:
        return [t for s in self._segments for t in s.tokens]

    def clear(self) -> None:
        self._segments = ()

    def remember(self, prompt: Tokenized, answer_text: str, answer_tokens: Sequence[int]) -> None:
        """After a turn: the prompt and the answer the model wrote after it.
        The answer continues the prompt's last piece (the text after
        ``<|assistant|>``), as it will in the next prompt's history."""
        if not prompt.segments:
            self._segments = ()
            return
        *head, last = prompt.segments
        piece = Piece(last.piece.marker, last.piece.text + answer_text)
        self._segments = (*head, Segment(piece, last.tokens + tuple(answer_tokens)))

    def tokenize(self, parts: Sequence[PromptPart]) -> Tokenized:
        """Tokens for the prompt ``parts``, reusing the cached tokens of every
        remembered segment it repeats: a run from the start, then (history
        left out) one more run from a later segment. The rest is tokenized
        afresh."""
        tokenizer = self._model.prompt_tokenizer
        pieces = tokenizer.pieces(parts)
        segments = self._run(pieces, 0, 0)
        index = len(segments)
        if index < len(pieces) and index < len(self._segments):
            best: list[Segment] = []
            for start in range(index + 1, len(self._segments)):
                run = self._run(pieces, start, index)
                if len(run) > len(best):
                    best = run
            segments += best
        for position in range(len(segments), len(pieces)):
            piece = pieces[position]
            segments.append(Segment(piece, tokenizer.tokens(piece, first=position == 0)))
        return Tokenized([t for s in segments for t in s.tokens], tuple(segments))

    def _run(self, pieces: Sequence[Piece], cached: int, position: int) -> list[Segment]:
        """Remembered segments from ``cached`` on that ``pieces`` repeats from
        ``position`` on, one after the other."""
        run: list[Segment] = []
        while (
            cached < len(self._segments)
            and position < len(pieces)
            and self._segments[cached].piece == pieces[position]
        ):
            run.append(self._segments[cached])
            cached, position = cached + 1, position + 1
        return run


def shared_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    shared = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        shared += 1
    return shared


def find_gap(
    cached: Sequence[int], tokens: Sequence[int], start: int, controls: Container[int]
) -> tuple[int, int] | None:
    """Where ``tokens`` goes on in ``cached`` after a left-out span: for the
    two diverging at ``start``, the position ``end`` > ``start`` in ``cached``
    such that ``cached[end:]`` shares the longest run with ``tokens[start:]``.
    Returns (end, run length), or None if no run reaches
    :data:`MIN_SHIFT_REUSE_TOKENS`.

    Only whole messages count as left out: the control token that opens the
    message ``start`` is in (``<|user|>``) must land on the same control token
    ``end - start`` further on in ``cached``. That keeps out look-alikes such
    as the search-query turn, which quotes the question but is not history.
    """
    probe = list(tokens[start : start + MIN_SHIFT_REUSE_TOKENS])
    if len(probe) < MIN_SHIFT_REUSE_TOKENS:
        return None
    opener = next((i for i in range(start, -1, -1) if tokens[i] in controls), None)
    if opener is None:
        return None
    cached = list(cached)
    best: tuple[int, int] | None = None
    for end in range(start + 1, len(cached) - MIN_SHIFT_REUSE_TOKENS + 1):
        # The slice comparison runs in C; the full run is counted only for hits.
        if cached[end] != probe[0] or cached[end : end + len(probe)] != probe:
            continue
        if cached[opener + end - start] != tokens[opener]:
            continue
        run = shared_prefix(cached[end:], tokens[start:])
        if best is None or run > best[1]:
            best = (end, run)
    return best


def can_shift(model: LocalModel) -> bool:
    """Whether llama.cpp can move cached tokens to new positions for this model."""
    return llama_internals.can_shift(model.llama)


def reuse_cache(model: LocalModel, tokens: Sequence[int]) -> int:
    """How many leading ``tokens`` llama.cpp's cache holds, after moving the
    cache up if ``tokens`` repeats it but for a left-out span (that span is
    removed and what follows shifted into place)."""
    llama = model.llama
    cached = llama_internals.cached_tokens(llama)
    start = shared_prefix(cached, tokens)
    if start >= len(cached) or start >= len(tokens):
        return start
    gap = find_gap(cached, tokens, start, model.control_tokens)
    if gap is None or not can_shift(model):
        return start
    end, run = gap
    if not llama_internals.remove_span(llama, start, end):
        return start
    log.info(
        "shifted %d cached tokens back by %d (history left out)", len(cached) - end, end - start
    )
    return start + run
