"""The prompt budget: what fits in the context, and in the time to the first word.

A turn's prompt is: system prompt + kept history + sources + question, and an
answer reserve must stay free. Two limits apply:

* **Tokens.** Everything must fit in the context. When it does not, the oldest
  history goes first, but sources keep at least :data:`MIN_SOURCE_SHARE` of the
  context (a grounded answer needs its sources more than it needs turn 1);
  then the last passages in the search's order go.
* **Time.** The user picks how long they will wait for the first word
  (:class:`FirstWordTarget`). Times this machine's measured prompt speed
  (``engine.prompt_speed``), that bounds how many tokens llama.cpp may have to
  evaluate. Only new tokens cost time: the KV-cached prefix (system prompt and
  history already read) is free, so ``evaluated = prompt - cached prefix``.
  The time target trims sources, never history: history that is not cached is
  read once and then reused for the rest of the conversation, while dropping
  it would make the answer forget what was said.

Everything here is pure arithmetic on token counts, so it is tested with
numbers; ``engine.turn`` measures the counts and applies the plan.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import Enum

from engine.context import Passage, SourcePassage
from engine.evidence import (
    best_window,
    sent_units,
    without_cited_heading,
    without_shared_indent,
)

# Sources keep at least this share of the context when there are any.
MIN_SOURCE_SHARE = 0.4
# With documents and web pages both present, room is kept for each kind's best
# passage when it takes at most this share of the source budget; the rest
# follows the search's order.
MIN_KIND_SHARE = 0.25
# The time target never cuts sources below about one passage (~512 chars): an
# answer "in time" without any source is not what the user asked for.
MIN_TIME_SOURCE_TOKENS = 160
# A passage is shortened to fit only if at least this much of it can stay.
MIN_CUT_PASSAGE_TOKENS = 32
# When fewer whole passages fit, this many share the budget, each cut to its
# part that bears on the question (see select_passages)...
MIN_EVIDENCE_PASSAGES = 3
# ...fewer when a window would be smaller than this share of a typical
# passage (about two sentences with the citation line). Measured by
# bench.grounding at Fast (~140 tokens for sources): three windows of ~45
# tokens held the answer for 0.46 of the questions, two or one of ~70-140
# for 0.58 (a window that holds the question's words stops short of the
# answer after them); Balanced and Thorough, roomier, are unchanged.
MIN_WINDOW_SHARE = 0.4

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


class FirstWordTarget(Enum):
    """How long the user is willing to wait for the first word. The value is
    the name settings and the command line use; ``seconds`` is the target.

    FAST: a quick answer from the best few passages (10 s).
    BALANCED: the default; a handful of passages on a laptop CPU (25 s).
    THOROUGH: as many sources as the context holds on most machines (60 s).
    """

    FAST = "fast"
    BALANCED = "balanced"
    THOROUGH = "thorough"

    @property
    def seconds(self) -> float:
        return _FIRST_WORD_SECONDS[self]


_FIRST_WORD_SECONDS = {
    FirstWordTarget.FAST: 10.0,
    FirstWordTarget.BALANCED: 25.0,
    FirstWordTarget.THOROUGH: 60.0,
}


@dataclass(frozen=True)
class TimeBudget:
    target: FirstWordTarget
    prompt_tokens_per_s: float  # this machine, this model: engine.prompt_speed

    @property
    def max_evaluated_tokens(self) -> int:
        return int(self.target.seconds * self.prompt_tokens_per_s)


@dataclass(frozen=True)
class PromptSizes:
    """Token counts of a turn's prompt, part by part."""

    context_tokens: int
    answer_reserve_tokens: int
    system_tokens: int  # the system turn (with BOS and template markers); 0 if none
    # Earlier turns in droppable units (whole exchanges), oldest first.
    history_tokens: Sequence[int]
    # The newest user turn without sources: template markers, question, the
    # sources' framing sentences, and the generation prompt.
    question_tokens: int
    # Tokens at the start of system + full history that llama.cpp has cached.
    cached_prefix_tokens: int = 0
    # Whether leaving out the oldest history keeps the rest cached (llama.cpp
    # shifts it into place: engine.prompt_cache) rather than making it be read again.
    cache_shifts: bool = False

    @property
    def available_tokens(self) -> int:
        """Room for history + sources once the fixed parts and the reserve are in."""
        fixed = self.answer_reserve_tokens + self.system_tokens + self.question_tokens
        return max(0, self.context_tokens - fixed)


@dataclass(frozen=True)
class BudgetPlan:
    dropped_history_units: int  # the oldest units to leave out
    source_tokens: int  # the most tokens the sources may take
    limited_by_time: bool  # the first-word target, not the context, set source_tokens
    evaluated_tokens: int  # tokens llama.cpp will evaluate if sources use source_tokens


def plan_prompt(sizes: PromptSizes, *, time: TimeBudget | None = None) -> BudgetPlan:
    """Decide how much history to keep and how many tokens sources may take.

    Made before retrieval, so it plans for the most sources could get: the
    result's ``source_tokens`` is the budget ``select_passages`` fills with
    what the source returns (the source is not told it: no source's work
    shrinks with it, and the planner cuts passages to fit). ``time``: None
    plans for the context alone.
    """
    avail = sizes.available_tokens
    floor = int(min(math.ceil(MIN_SOURCE_SHARE * sizes.context_tokens), avail))
    units = list(sizes.history_tokens)
    dropped, kept = _keep_newest(units, avail - floor)
    by_context = avail - kept

    source_tokens, limited_by_time = by_context, False
    prefix_cost = _prefix_cost(sizes, dropped, kept)
    if time is not None:
        by_time = max(
            MIN_TIME_SOURCE_TOKENS, time.max_evaluated_tokens - prefix_cost - sizes.question_tokens
        )
        if by_time < by_context:
            source_tokens, limited_by_time = by_time, True
    return BudgetPlan(
        dropped_history_units=dropped,
        source_tokens=source_tokens,
        limited_by_time=limited_by_time,
        evaluated_tokens=prefix_cost + sizes.question_tokens + source_tokens,
    )


def _keep_newest(units: list[int], room: int) -> tuple[int, int]:
    """How many of the oldest units to drop so the rest fit in ``room``;
    returns (dropped, tokens kept)."""
    kept = 0
    for index in range(len(units) - 1, -1, -1):
        if kept + units[index] > room:
            return index + 1, kept
        kept += units[index]
    return 0, kept


def _prefix_cost(sizes: PromptSizes, dropped: int, kept: int) -> int:
    """Tokens of system + kept history llama.cpp must evaluate. Dropping any
    history moves every later token: if the cache can be shifted, what was
    cached after the dropped units still is; otherwise only the system
    prompt's part of the cache still matches."""
    prefix = sizes.system_tokens + kept
    cached = sizes.cached_prefix_tokens
    if dropped == 0:
        return prefix - min(cached, prefix)
    dropped_tokens = sum(sizes.history_tokens[:dropped])
    if sizes.cache_shifts and cached >= sizes.system_tokens + dropped_tokens:
        return prefix - min(cached - dropped_tokens, prefix)
    return prefix - min(cached, sizes.system_tokens)


def select_passages(
    passages: Sequence[Passage],
    budget_tokens: int,
    count_tokens: Callable[[Passage], int],
    question: str = "",
) -> list[Passage]:
    """The passages to send, in the order the search returned them (so
    numbered [1], [2], … in that order).

    The search decides the order (documents: the hybrid's ranking; web: the
    pages' ranking; the context source merges them); the planner never
    re-ranks by a score, which may come from one retriever alone (a dense
    cosine would undo the fusion that put a keyword match first). Repeats
    (same id, or same text) keep the earlier copy.

    Passages are taken whole from the top while they fit. When that leaves
    fewer than :data:`MIN_EVIDENCE_PASSAGES` and there are more, the first
    ones share the budget instead, each shortened to its part that bears on
    ``question`` (``engine.evidence``): the answer is often the search's
    second or third passage, and a window of each beats all of the first.
    Otherwise the first passage that does not fit is shortened to fill the
    room; the rest is trimmed from the bottom. With documents and web pages
    both present, the best passage of each kind keeps a place (if it takes
    at most :data:`MIN_KIND_SHARE` of the budget), so one kind cannot crowd
    the other out. ``count_tokens`` gives a passage's tokens as rendered in
    the prompt (its numbered block).
    """
    ordered = [without_shared_indent(without_cited_heading(p)) for p in _unique(passages)]
    if budget_tokens <= 0 or not ordered:
        return []
    sizes = {id(p): count_tokens(p) for p in ordered}
    reserved = _kind_reserve(ordered, sizes, budget_tokens)
    whole: list[Passage] = []
    used = 0
    for p in ordered:
        reserved.pop(id(p), None)
        if used + sizes[id(p)] + sum(reserved.values()) > budget_tokens:
            break
        whole.append(p)
        used += sizes[id(p)]
    kept = {id(p) for p in whole}
    late = [p for p in ordered if id(p) in reserved]  # a kind's best, after the stop
    if len(whole) + len(late) >= min(MIN_EVIDENCE_PASSAGES, len(ordered)):
        chosen = {id(p): p for p in [*whole, *late]}
        room = budget_tokens - used - sum(sizes[id(p)] for p in late)
        following = next((p for p in ordered if id(p) not in kept and id(p) not in chosen), None)
        if following is not None and room >= MIN_CUT_PASSAGE_TOKENS:
            cut = cut_passage(following, room, count_tokens, question)
            if cut is not None:
                chosen[id(following)] = cut
        return [chosen[id(p)] for p in ordered if id(p) in chosen]
    return _shared(ordered, sizes, budget_tokens, count_tokens, question)


def _kind_reserve(
    ordered: Sequence[Passage], sizes: dict[int, int], budget_tokens: int
) -> dict[int, int]:
    """Room kept for the best passage of each kind, where the kinds are mixed."""
    firsts: dict[str, Passage] = {}
    for p in ordered:
        firsts.setdefault(p.kind, p)
    if len(firsts) < 2:
        return {}
    return {
        id(p): sizes[id(p)]
        for p in firsts.values()
        if sizes[id(p)] <= MIN_KIND_SHARE * budget_tokens
    }


def _shared(
    ordered: Sequence[Passage],
    sizes: dict[int, int],
    budget_tokens: int,
    count_tokens: Callable[[Passage], int],
    question: str,
) -> list[Passage]:
    """The first few passages (each kind's best among them), the budget
    shared out: a passage smaller than its share stays whole and leaves the
    rest to the others, a larger one is cut to its share. As many as
    :data:`MIN_EVIDENCE_PASSAGES`, fewer when a share would be too small
    (:data:`MIN_WINDOW_SHARE` of a typical passage).

    The shares are settled smallest passage first (what a small one leaves
    goes to the larger ones); the windows are then cut best-ranked first, so
    that a sentence two passages share (overlapping chunks, a paragraph
    repeated under two headings) is sent once, with the better-ranked one,
    and the other's window goes to its next best lines."""
    # Each window must be big enough to hold both the words the question
    # names and what follows them: a share of a typical passage, so the rule
    # reads the same in any model's tokens.
    typical = statistics.median(sizes[id(p)] for p in ordered[:MIN_EVIDENCE_PASSAGES])
    roomy = int(budget_tokens // max(1.0, MIN_WINDOW_SHARE * typical))
    count = min(
        MIN_EVIDENCE_PASSAGES,
        len(ordered),
        budget_tokens // MIN_CUT_PASSAGE_TOKENS,
        max(1, roomy),
    )
    while count > 0:
        group = list(ordered[:count])
        for p in ordered:  # a kind absent from the group takes the place of its last one
            if p.kind not in {q.kind for q in group} and count > 1:
                group[-1] = p
        shares: dict[int, int | None] = {}  # None: whole
        left, waiting = budget_tokens, sorted(group, key=lambda q: sizes[id(q)])
        while waiting:
            share = left // len(waiting)
            p = waiting.pop(0)
            if sizes[id(p)] <= share:
                shares[id(p)] = None
                left -= sizes[id(p)]
                continue
            cut = cut_passage(p, share, count_tokens, question)
            if cut is None:
                break
            shares[id(p)] = share
            left -= count_tokens(cut)
        else:
            chosen: list[Passage] = []
            sent: set[str] = set()
            for p in ordered:
                if id(p) not in shares:
                    continue
                allotted = shares[id(p)]
                kept = (
                    p
                    if allotted is None
                    else cut_passage(p, allotted, count_tokens, question, sent)
                )
                if kept is None:  # cannot happen: the same cut fitted above
                    continue
                chosen.append(kept)
                sent |= sent_units(kept.text)
            return chosen
        count -= 1
    return []


def cut_passage(
    passage: Passage,
    budget_tokens: int,
    count_tokens: Callable[[Passage], int],
    question: str = "",
    sent: Collection[str] = (),
) -> Passage | None:
    """``passage`` shortened to fit ``budget_tokens``: its best run of whole
    sentences or lines for ``question`` (``engine.evidence``; ``sent``: the
    sentences other passages already carry, which count for nothing here);
    else (or with no question) its first whole sentences; else its first
    words with "…". None if too little would stay."""
    if budget_tokens < MIN_CUT_PASSAGE_TOKENS:
        return None
    if question:
        window = best_window(passage, question, budget_tokens, count_tokens, sent)
        if window is not None:
            return window
    sentences = _SENTENCE_END.split(passage.text.strip())

    def fits(text: str) -> bool:
        return count_tokens(SourcePassage.of(passage, text=text)) <= budget_tokens

    best = _longest_fitting_prefix(sentences, " ", fits)
    if best == 0:
        words = passage.text.split()
        count = _longest_fitting_prefix(words, " ", lambda text: fits(text + " …"))
        if count == 0:
            return None
        return SourcePassage.of(passage, text=" ".join(words[:count]) + " …")
    return SourcePassage.of(passage, text=" ".join(sentences[:best]))


def _longest_fitting_prefix(parts: list[str], sep: str, fits: Callable[[str], bool]) -> int:
    """The most leading ``parts`` whose join fits (binary search: token counts
    grow with the prefix)."""
    low, high = 0, len(parts)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(sep.join(parts[:middle])):
            low = middle
        else:
            high = middle - 1
    return low


def _unique(passages: Sequence[Passage]) -> list[Passage]:
    """Drop repeats (same id, or the same text found under two ids), keeping
    the earlier, better-ranked copy."""
    seen: set[str] = set()
    kept = []
    for p in passages:
        keys = {"text:" + " ".join(p.text.split())} | ({"id:" + p.id} if p.id else set())
        if keys.isdisjoint(seen):
            kept.append(p)
        seen |= keys
    return kept
