"""When to search the web: the Off / Auto / Always rule, as a pure function.

The app decides; the model only writes the query (small models are poor at
deciding to call tools). In **Auto** mode, in this order:

1. Never for requests that need no facts from outside: greetings and thanks,
   arithmetic, and work on text the user supplies ("translate this", "fix this
   code", "rewrite", "summarize this", "write a poem").
2. Search when the question is about recency: "latest", "today", "current",
   "news", "price", "this week", a year from ``RECENT_YEARS_BACK`` years ago on.
3. Search when the local documents do not cover it: there are none, or the best
   document passage scores below ``DOCUMENT_SCORE_THRESHOLD`` (cosine, the
   documents' embedder), or the question names something (a capitalized name,
   an acronym) that no retrieved document passage mentions.
4. Otherwise answer from the documents.

**Off** never searches (nothing leaves the machine); **Always** searches every
question except an empty one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Protocol

# MiniLM cosine: a passage that answers a question scores ~0.5-0.8; below 0.4
# it usually only shares a topic word.
DOCUMENT_SCORE_THRESHOLD = 0.40
RECENT_YEARS_BACK = 2


class WebMode(Enum):
    OFF = "off"
    AUTO = "auto"
    ALWAYS = "always"


class ScoredText(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class SearchDecision:
    search: bool
    reason: str  # shown to the user ("the documents do not mention Nvidia")

    def __bool__(self) -> bool:
        return self.search


_CHITCHAT = re.compile(
    r"^\s*(hi|hello|hey|good (morning|afternoon|evening)|thanks?( you)?|thank you|ok(ay)?|"
    r"bye|goodbye|how are you|who are you|what can you do)\b([\s!.?,]+\w+){0,3}[\s!.?]*$",
    re.IGNORECASE,
)
_MATHS = re.compile(r"^[\s\d.,+\-*/×÷^%()=?]*\d[\s\d.,+\-*/×÷^%()=?]*$")
_MATHS_QUESTION = re.compile(
    r"^\s*(what is|what's|calculate|compute|solve|evaluate)\s+[\d\s.,+\-*/×÷^%()=x]+\??\s*$",
    re.IGNORECASE,
)
_TEXT_WORK = re.compile(
    r"\b(translate|rewrite|rephrase|paraphrase|proofread|reword|shorten|summari[sz]e|"
    r"fix|refactor|debug|correct|format|explain)\b[^.?!]*\b(this|these|that|the following|"
    r"my|below|above|it)\b|^\s*(write|compose|draft)\s+(me\s+)?(a|an)\s+"
    r"(poem|story|haiku|limerick|song|joke|email|letter|essay)\b",
    re.IGNORECASE,
)
_RECENCY = re.compile(
    r"\b(latest|newest|recent(ly)?|today|tonight|yesterday|tomorrow|current(ly)?|now|news|"
    r"this (week|month|year)|right now|up[- ]to[- ]date|price|prices|stock|weather|score|"
    r"released?|upcoming|still)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(19|20)\d\d\b")
_WORD = re.compile(r"[A-Za-z][\w'’-]*|[.!?]")
_NOT_NAMES = frozenset({"I", "I'm", "I've", "I'd", "OK"})


def _names(question: str) -> list[str]:
    """Capitalized words not at the start of a sentence (runs of them joined:
    "Port Vell"), and acronyms anywhere ("NASA", "GPT4")."""
    names: list[str] = []
    run: list[str] = []
    sentence_start = True
    for match in _WORD.finditer(question):
        word = match.group(0)
        is_acronym = len(word) >= 2 and word.isupper()
        capitalized = word[0].isupper() and word not in _NOT_NAMES
        is_name = capitalized and (not sentence_start or is_acronym)
        if is_name:
            run.append(word)
        elif run:
            names.append(" ".join(run))
            run = []
        sentence_start = word in ".!?"
    if run:
        names.append(" ".join(run))
    return names


def need_search(  # noqa: PLR0911 - one return per rule, in the documented order
    question: str,
    mode: WebMode,
    document_passages: Sequence[ScoredText] = (),
    *,
    today: date | None = None,
    threshold: float = DOCUMENT_SCORE_THRESHOLD,
) -> SearchDecision:
    """Whether to search the web for ``question``, given the passages document
    retrieval found for it (best first or not; only their text and score
    matter)."""
    if mode is WebMode.OFF:
        return SearchDecision(False, "web search is off")
    if not question.strip():
        return SearchDecision(False, "empty question")
    if mode is WebMode.ALWAYS:
        return SearchDecision(True, "web search is on for every question")
    if _CHITCHAT.match(question) or _MATHS.match(question) or _MATHS_QUESTION.match(question):
        return SearchDecision(False, "no facts needed")
    if _TEXT_WORK.search(question):
        return SearchDecision(False, "works on text you gave")
    year_now = (today or date.today()).year
    if _RECENCY.search(question) or any(
        int(m.group(0)) >= year_now - RECENT_YEARS_BACK for m in _YEAR.finditer(question)
    ):
        return SearchDecision(True, "the question is about recent events")
    if not document_passages:
        return SearchDecision(True, "no documents cover this")
    best = max(p.score for p in document_passages)
    if best < threshold:
        return SearchDecision(True, f"the documents match poorly (best score {best:.2f})")
    corpus = " ".join(p.text for p in document_passages).lower()
    missing = [name for name in _names(question) if name.lower() not in corpus]
    if missing:
        return SearchDecision(True, f"the documents do not mention {', '.join(missing)}")
    return SearchDecision(False, "the documents cover this")
