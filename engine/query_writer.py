"""The model writes one short web search query for the user's question.

The recipe is Hugging Face chat-ui's (2024), which the Phi-3 report's search
demo used: ask for a search-engine query, give today's date (so "latest" and
"this year" resolve) and the previous questions (so "and in 2023?" does).
Small models are poor at tool calling, so the app decides *whether* to search;
the model only writes *what* to search for.

Why it is cheap: the query prompt is the conversation's own prompt (system
prompt + history) with a different newest user turn, built from the session's
cached tokens. llama.cpp keeps the shared prefix in its KV cache, so writing a
query evaluates only the short query turn and the query itself, and the answer
turn afterwards again finds system prompt + history cached (only the query
turn is replaced). The model runs in
:meth:`engine.turn.ChatSession.write_search_query`, with the turn's own
decode loop; this module holds the words around it: the instruction, and
what makes a reply a query.

The output is untrusted text from a small model: it is cut to one line,
cleaned, capped, and replaced by the question's key words when it looks like
anything but a query (the tiny test model's scripted answer is such a case).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence

MAX_QUERY_TOKENS = 30
MAX_QUERY_CHARS = 120
MAX_QUERY_WORDS = 12
FALLBACK_QUERY_WORDS = 8

_PREFIX = re.compile(
    r"^\s*(?:[-*•>]\s*|\d+[.)]\s*)?(?:(?:web\s+)?search(?:\s+query)?|query)\s*[:：=-]\s*",
    re.IGNORECASE,
)
_MARKUP = str.maketrans("", "", '`*_#"“”„«»‘’[]{}<>|')
_WORD = re.compile(r"[\w][\w'’.+-]*[\w]|[\w]", re.UNICODE)
# Common English words that carry no search meaning (for the fallback query
# and for checking that a written query is about the question at all).
_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours yourself tell please explain know give show find
    get got let lets like want need think say said also much many really thing things does
    whats"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def query_instruction(question: str, recent_questions: Sequence[str], today: _dt.date) -> str:
    """The user turn that asks for the query (chat-ui's wording, adapted)."""
    lines = [
        "Write a web search query for my question below: the few words you would type "
        "into a search engine to find the answer. Reply with the query alone, on one line.",
        f"Today is {today:%A}, {today.day} {today:%B %Y}.",
    ]
    previous = [q.strip() for q in recent_questions if q.strip()]
    if previous:
        lines.append("Previous questions:")
        lines += [f"- {' '.join(q.split())}" for q in previous]
    lines.append(f"Current question: {' '.join(question.split())}")
    return "\n".join(lines)


def sanitize_query(
    raw: str, question: str, recent_questions: Sequence[str] = (), *, ran_out: bool = False
) -> str:
    """One clean line, or the fallback when ``raw`` does not look like a query
    about the question: empty, runaway (``ran_out``: no end within the token
    cap), too many words, or not one word in common with the questions."""
    fallback = fallback_query(question, recent_questions)
    line = next((part for part in raw.splitlines() if part.strip()), "")
    line = _PREFIX.sub("", line).translate(_MARKUP)
    line = " ".join(line.split()).strip(" '.,;:!-")
    words = line.split()
    if not line or ran_out or len(words) > MAX_QUERY_WORDS:
        return fallback
    asked = _stems(" ".join([question, *recent_questions]))
    if asked and asked.isdisjoint(_stems(line)):
        return fallback
    return _cap(line)


def fallback_query(question: str, recent_questions: Sequence[str] = ()) -> str:
    """The question's key words; a follow-up with few of its own ("and in
    2023?") borrows the previous question's."""
    words = _keywords(question)
    if len(words) < 2 and recent_questions:
        words = _keywords(recent_questions[-1]) + words
    unique = list(dict.fromkeys(words))[-FALLBACK_QUERY_WORDS:]
    if unique:
        return _cap(" ".join(unique))
    return _cap(" ".join(question.split())) or "search"


def _keywords(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in _STOPWORDS]


def _stems(text: str) -> set[str]:
    # Five letters is a crude stem that matches "private"/"privacy" and
    # "install"/"installing" without a stemming library.
    return {w.lower()[:5] for w in _keywords(text) if len(w) >= 3 or w.isdigit()}


def _cap(text: str) -> str:
    if len(text) <= MAX_QUERY_CHARS:
        return text
    return text[:MAX_QUERY_CHARS].rsplit(" ", 1)[0]
