"""When to search the web: the Off / Auto / Always rule, as a pure function.

The app decides; the model only writes the query (small models are poor at
deciding to call tools). In **Auto** mode, in this order:

1. Never for requests that need no sources at all: greetings and thanks,
   arithmetic, work on text the user supplies, creative writing, a change to
   the last answer (:func:`retrieval.source_decision.no_sources_needed`, the
   same rule the documents' Auto mode uses).
2. Search when the question is about recency: "latest", "today", "current",
   "news", "price", "this week", a year from ``RECENT_YEARS_BACK`` years ago on.
3. Search when the local documents do not cover it: no document passage is
   evidence for the question (:func:`retrieval.source_decision.is_evidence`:
   both retrievers' signals, the same gate that decides whether documents are
   sent), or the question names something (a capitalized name, an acronym)
   that no retrieved document passage mentions.
4. Otherwise answer from the documents.

**Off** never searches (nothing leaves the machine); **Always** searches every
question except an empty one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from retrieval.source_decision import (
    Decision,
    ScoredText,
    SourceMode,
    evidence_passages,
    no_sources_needed,
)

RECENT_YEARS_BACK = 2

# The web's modes are the documents' modes: one choice, one rule.
WebMode = SourceMode
SearchDecision = Decision

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
    mode: SourceMode,
    document_passages: Sequence[ScoredText] = (),
    *,
    today: date | None = None,
) -> Decision:
    """Whether to search the web for ``question``, given the passages document
    retrieval found for it."""
    if mode is SourceMode.OFF:
        return Decision(False, "web search is off")
    if not question.strip():
        return Decision(False, "empty question")
    if mode is SourceMode.ALWAYS:
        return Decision(True, "web search is on for every question")
    reason = no_sources_needed(question)
    if reason:
        return Decision(False, reason)
    year_now = (today or date.today()).year
    if _RECENCY.search(question) or any(
        int(m.group(0)) >= year_now - RECENT_YEARS_BACK for m in _YEAR.finditer(question)
    ):
        return Decision(True, "the question is about recent events")
    if not document_passages:
        return Decision(True, "no documents cover this")
    covering = evidence_passages(question, document_passages)
    if not covering:
        return Decision(True, "your documents do not cover this")
    corpus = " ".join(p.text for p in covering).lower()
    missing = [name for name in _names(question) if name.lower() not in corpus]
    if missing:
        return Decision(True, f"the documents do not mention {', '.join(missing)}")
    return Decision(False, "the documents cover this")
