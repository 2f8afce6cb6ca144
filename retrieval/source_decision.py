"""Whether a turn gets sources: the Off / Auto / Always rule for the user's
documents and for the web, as pure functions (no index, no network).

Grounding is a decision, not a reflex. A greeting, a thank-you, arithmetic,
work on text the user gives ("translate this"), creative writing or a change
to the last answer ("shorter please") needs no sources, and passages that do
not answer the question make a small model worse: it tries to use them. So
in **Auto** a turn is grounded only when it asks for information *and* the
search found evidence. **Always** sends whatever the search found (the user
asked for it); **Off** sends nothing and, for the web, sends nothing out.

Evidence is judged per passage from both retrievers, each on a scale that
does not move with the corpus:

* the dense cosine (MiniLM): a passage that answers a question scores about
  0.5-0.8, one that only shares its topic 0.3-0.45;
* the lexical match: which of the question's identifiers (``--cid``,
  ``snake_case``, ``3.11.2``, ``E1101``) the passage holds exactly, and the
  share of the question's content words it holds (BM25 scores themselves
  grow with the corpus and the question's length, so they are not used).

A passage is evidence when it holds one of the question's identifiers, or
when its cosine is high, or when a middling cosine comes with most of the
question's words. Why this should hold beyond the sets it was checked on: the
cosine bands are properties of the embedding model (the same for any folder),
the coverage share is a fraction of the user's own words, and an identifier
is either in the passage or not; nothing is ranked against the corpus. The
thresholds were set from the model's known bands, then checked (not tuned)
on ``bench.grounding``'s real folder and on ``shared/eval`` questions asked
of the other set's corpus (answerable-nowhere questions), see the README.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from retrieval.identifiers import query_identifiers
from retrieval.lexical_index import evidence

# MiniLM cosine bands (all-MiniLM-L6-v2, normalised): at or above STRONG a
# passage is on the question's subject; between WEAK and STRONG it needs the
# question's own words too; below WEAK it is noise whatever else it shares.
STRONG_COSINE = 0.50
WEAK_COSINE = 0.30
# The share of the question's content words a middling passage must hold.
MIN_TERM_COVERAGE = 0.5


class SourceMode(Enum):
    """Per conversation, for documents and for the web alike."""

    OFF = "off"
    AUTO = "auto"
    ALWAYS = "always"


@dataclass(frozen=True)
class Decision:
    use: bool
    reason: str  # for people: "no facts needed", "your documents do not cover this"

    def __bool__(self) -> bool:
        return self.use


class ScoredText(Protocol):
    """A passage as far as the decision reads it: its text and cosine."""

    @property
    def text(self) -> str: ...

    @property
    def score(self) -> float: ...


_CHITCHAT = re.compile(
    r"^\s*(hi|hello|hey|hiya|good (morning|afternoon|evening|night)|thanks?( you)?|thank you|"
    r"thx|cheers|ok(ay)?|cool|great|nice|perfect|bye|goodbye|see you|how are you|"
    r"who are you|what can you do|what is your name|what's your name)\b"
    r"([\s!.?,]+\w+){0,4}[\s!.?]*$",
    re.IGNORECASE,
)
_GREETING_REQUEST = re.compile(
    r"^\s*(please\s+)?(say|write)\s+(hello|hi|goodbye|thanks|thank you)\b", re.IGNORECASE
)
_MATHS = re.compile(r"^[\s\d.,+\-*/×÷^%()=?]*\d[\s\d.,+\-*/×÷^%()=?]*$")
_MATHS_QUESTION = re.compile(
    r"^\s*(what is|what's|how much is|calculate|compute|solve|evaluate)\s+"
    r"[\d\s.,+\-*/×÷^%()=x]+\??\s*$",
    re.IGNORECASE,
)
_TEXT_WORK = re.compile(
    r"\b(translate|rewrite|rephrase|paraphrase|proofread|reword|shorten|summari[sz]e|"
    r"fix|refactor|debug|correct|format|explain)\b[^.?!]*\b(this|these|that|the following|"
    r"my|below|above|it)\b|^\s*translate\b",
    re.IGNORECASE,
)
_CREATIVE = re.compile(
    r"^\s*(please\s+)?(can you\s+|could you\s+)?(write|compose|draft|make up|invent|tell)\s+"
    r"(me\s+)?(a|an|some|another)\s+(short\s+|funny\s+|little\s+)?"
    r"(poem|story|haiku|limerick|song|joke|riddle|email|letter|essay|tale|rhyme|slogan)\b",
    re.IGNORECASE,
)
# A change to the previous answer: it is rewritten, nothing new is asked.
_FOLLOW_UP_EDIT = re.compile(
    r"^\s*(please\s+)?((make it|be|even|a bit|much)\s+)?(shorter|longer|simpler|clearer|"
    r"more (formal|casual|concise|detailed|polite)|less (formal|technical))\b[\s\w,]*[.!?]*\s*$|"
    r"^\s*(shorter|simpler|again|continue|go on|keep going|more|say (it|that) again|"
    r"try again|in (bullet points|a table|one sentence|plain english|french|german|spanish))"
    r"([\s,]+please)?[.!?]*\s*$",
    re.IGNORECASE,
)


def no_sources_needed(question: str) -> str | None:
    """Why ``question`` needs no sources at all, or None if it may."""
    if not question.strip():
        return "empty question"
    if (
        _CHITCHAT.match(question)
        or _GREETING_REQUEST.match(question)
        or _MATHS.match(question)
        or _MATHS_QUESTION.match(question)
    ):
        return "no facts needed"
    if _FOLLOW_UP_EDIT.match(question):
        return "it changes the last answer"
    if _CREATIVE.match(question):
        return "creative writing"
    if _TEXT_WORK.search(question):
        return "works on text you gave"
    return None


def is_evidence(question: str, passage: ScoredText) -> bool:
    """Whether ``passage`` bears on ``question`` (see the module's notes).
    Uses the identifiers/coverage the search measured when the passage has
    them (document passages), else measures them on its text."""
    identifiers = getattr(passage, "matched_identifiers", None)
    coverage = getattr(passage, "term_coverage", None)
    if identifiers is None or coverage is None or (not identifiers and not coverage):
        identifiers, coverage = evidence(question, passage.text)
    if identifiers or _defines_a_dotted_name(question, passage.text):
        return True
    if passage.score >= STRONG_COSINE:
        return True
    return passage.score >= WEAK_COSINE and coverage >= MIN_TERM_COVERAGE


def _defines_a_dotted_name(question: str, text: str) -> bool:
    """Whether ``text`` defines the last part of a dotted name the question
    asks about: "What does shlex.join do?" is answered by ``def join(`` in
    shlex.py, which never spells ``shlex.join`` out."""
    for name in query_identifiers(question):
        tail = name.rsplit(".", 1)[-1] if "." in name else ""
        if len(tail) >= 3 and re.search(
            rf"\b(?:def|class|function|fn|func)\s+{re.escape(tail)}\b", text, re.IGNORECASE
        ):
            return True
    return False


def evidence_passages(question: str, passages: Sequence[ScoredText]) -> list[ScoredText]:
    """The passages that are evidence, in their given order."""
    return [p for p in passages if is_evidence(question, p)]


def decide_documents(question: str, mode: SourceMode, passages: Sequence[ScoredText]) -> Decision:
    """Whether to send document passages found for ``question``."""
    if mode is SourceMode.OFF:
        return Decision(False, "documents are off for this conversation")
    if not passages:
        return Decision(False, "nothing in your documents matched")
    if mode is SourceMode.ALWAYS:
        return Decision(True, "documents are on for every question")
    reason = no_sources_needed(question)
    if reason:
        return Decision(False, reason)
    if not evidence_passages(question, passages):
        return Decision(False, "your documents do not seem to cover this")
    return Decision(True, "your documents cover this")
