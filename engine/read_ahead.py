"""What a read-ahead (``ChatSession.read_ahead``, while the user types) left
in llama.cpp's KV cache, and how the turn after it reuses that.

The read-ahead builds the next prompt for the text typed so far, with the
passages the search finds for it, and reads it into the cache in small
batches until Enter or newer text stops it. The turn sent on Enter plans and
searches again for the whole question; the passages the read-ahead left
*whole* in the cache that the search still returns go first, as they were
read: they cost the first word nothing (see :meth:`ReadAheadState.reuse`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.budget import select_passages
from engine.context import Passage

log = logging.getLogger(__name__)

# Reading ahead is stopped by Enter at any moment and by newer text at the end
# of a batch; llama.cpp keeps only whole batches, so it reads in small ones,
# about this long each at the measured prompt speed: on a 2-core laptop 512
# tokens are ~25 s of work, and on a busy one a fixed 32-token batch took
# 10 s (bench.ui_typing), longer than a short question takes to type. Small
# batches cost more per token: Phi-3-mini Q4 on one busy core read 8-, 16-,
# 32- and 64-token batches at ~55, 70, 95 and 100 % of its 128-token speed.
READ_AHEAD_BATCH_S = 2.0
READ_AHEAD_MIN_BATCH_TOKENS = 16
READ_AHEAD_MAX_BATCH_TOKENS = 64

# A passage whose block ends at most this many tokens past what the cache
# holds counts as read whole (the block sizes are counted one by one, the
# prompt tokenized at once: they may differ by a token at each seam).
WHOLE_SLACK_TOKENS = 8


def read_ahead_batch_tokens(prompt_tokens_per_s: float) -> int:
    """Tokens per read-ahead batch: about :data:`READ_AHEAD_BATCH_S` of
    reading at this speed, so Enter or newer text loses or waits at most
    that, within the bounds below which llama.cpp reads much slower per
    token and above which a batch outlasts a short question."""
    tokens = round(prompt_tokens_per_s * READ_AHEAD_BATCH_S)
    return max(READ_AHEAD_MIN_BATCH_TOKENS, min(READ_AHEAD_MAX_BATCH_TOKENS, tokens))


def whole_in_cache(
    sources: Sequence[Passage],
    block_tokens: Callable[[Passage], int],
    question_start: int,
    cached: int,
) -> int:
    """How many of ``sources`` (the first ones) a read-ahead left whole in the
    cache: their blocks end right before the question, at ``question_start``."""
    sizes = [block_tokens(p) for p in sources]
    end = question_start - sum(sizes)
    whole = 0
    for size in sizes:
        end += size
        if end > cached + WHOLE_SLACK_TOKENS:
            break
        whole += 1
    return whole


@dataclass
class ReadAheadState:
    """What the last read-ahead left in the cache, for the one turn (or
    read-ahead) after it."""

    tokens: int = 0  # of its prompt, now cached
    sources: tuple[Passage, ...] = ()  # the passages it read, in prompt order
    whole: int = 0  # how many of them (the first ones) the cache holds whole

    def forget(self) -> None:
        """After the turn it served: a read-ahead serves one turn."""
        self.sources = ()
        self.whole = 0

    def reuse(
        self,
        found: Sequence[Passage],
        selected: list[Passage],
        block_tokens: Callable[[Passage], int],
        *,
        new_tokens: int,
        context_tokens: int,
        question: str,
    ) -> list[Passage]:
        """The passages to send, given what the search ``found`` and the
        planner ``selected`` without a read-ahead. The passages the cache
        holds whole that the search still returns for the whole question are
        sent first, as they were read (in that order, cut for the question as
        it stood then): they cost the first word nothing, only room in the
        context. After them come the search's best other passages within the
        first-word budget (``new_tokens``) and the room left. A passage read
        ahead only in part counts like any other."""
        if not self.whole:
            return selected
        ahead = self.sources[: self.whole]
        returned = {p.id for p in found if p.id}
        cached = list(itertools.takewhile(lambda p: bool(p.id) and p.id in returned, ahead))
        log.info(
            "%d of %d passages read ahead (%d whole) are still found",
            len(cached),
            len(self.sources),
            len(ahead),
        )
        if not cached:
            return selected
        cached_tokens = sum(block_tokens(p) for p in cached)
        room = min(new_tokens, context_tokens - cached_tokens)
        taken = {p.id for p in cached}
        rest = [p for p in found if p.id not in taken]
        return cached + select_passages(rest, room, block_tokens, question)
