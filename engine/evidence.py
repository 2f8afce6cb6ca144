"""The part of a passage that bears on the question, when not all of it fits.

On a laptop CPU every prompt token costs ~50 ms before the first word, so a
Balanced turn reads about two whole chunks. Measured by ``bench.grounding``
on a real folder, the answering chunk is the search's first for about half of
the questions and among its first three for nearly nine in ten: two whole
chunks leave many answers out, and a chunk cut to its beginning loses the
answer as often as not (a code chunk cut one line above the ``raise`` it was
found for). So a passage that must be shortened keeps its best *window*: the
run of whole sentences (lines, for code and lists) that holds most of the
question's words and names, within the tokens it is given.

Relevance here is plain word overlap, on purpose: it runs per turn on a few
passages the search already ranked, needs no model, and cannot drift from
the texts. Words are compared by a 5-letter stem ("install"/"installing"),
and names with punctuation (``--cid``, ``load_dotenv``, ``shlex.join``,
``3.11``) count double, as whole strings and by their last dotted part.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from engine.context import Passage, SourcePassage

ELLIPSIS = "…"
_UNIT = re.compile(r"[^\n]*?(?:[.!?…](?=\s)|\n|$)")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_NAME = re.compile(r"(?<![\w.-])-{0,2}[A-Za-z0-9_][\w.-]*[\w](?:\(\))?")
_STOPWORD_TEXT = """a about after all also an and any are as at be been being but by can could
    did do does doing each for from had has have how i if in into is it its just me more most my
    no not of on or our so some such than that the their them then there these they this
    those to too very was we were what when where which while who whom why will with would
    you your please tell explain give show find get use using used want need"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_NAME_WEIGHT = 2.0
FOLLOW_SHARE = 0.5


@dataclass(frozen=True)
class QuestionTerms:
    stems: frozenset[str]
    names: frozenset[str]  # lower-cased strings with punctuation, and their last dotted part

    @classmethod
    def of(cls, question: str) -> QuestionTerms:
        words = {w.lower() for w in _WORD.findall(question)}
        stems = frozenset(_stem(w) for w in words if w not in _STOPWORDS and len(w) >= 3)
        names: set[str] = set()
        for match in _NAME.finditer(question):
            name = match.group(0).lower().removesuffix("()")
            if not re.search(r"[_.\-\d]", name):
                continue  # a plain word: counted by its stem
            names.add(name)
            last = name.rsplit(".", 1)[-1]
            if last != name and len(last) >= 3 and not last.isdigit():
                names.add(last)
        return cls(stems, frozenset(names))

    def score(self, text: str) -> float:
        lowered = text.lower()
        stems = {_stem(w) for w in _WORD.findall(lowered)}
        names = sum(_NAME_WEIGHT for name in self.names if name in lowered)
        return len(self.stems & stems) + names


def _stem(word: str) -> str:
    return word[:5]


def units(text: str) -> list[str]:
    """``text`` as consecutive sentences and lines; joined, they are ``text``."""
    pieces = [m.group(0) for m in _UNIT.finditer(text) if m.group(0)]
    out: list[str] = []
    for piece in pieces:  # whitespace after a sentence belongs to it
        if out and not piece.strip():
            out[-1] += piece
        else:
            out.append(piece)
    return out


def dedented(text: str) -> str:
    """``text`` without the indentation all its lines share (a chunk cut from
    inside a function or a nested list): it says nothing and costs prompt
    tokens. When only the first line is not indented (a heading written at
    the top of a chunk), the rest loses what it shares."""
    lines = text.strip("\n").split("\n")
    whole = textwrap.dedent("\n".join(lines))
    if whole != "\n".join(lines) or len(lines) < 2:
        return whole
    return "\n".join([lines[0], textwrap.dedent("\n".join(lines[1:]))])


def without_shared_indent(passage: Passage) -> Passage:
    text = dedented(passage.text)
    return passage if text == passage.text else SourcePassage.of(passage, text=text)


def without_cited_heading(passage: Passage) -> Passage:
    """``passage`` without the leading lines its citation already says: a
    chunk of a Markdown or Word file starts with its heading path ("Working
    with json › json.dumps"), which the numbered source's citation line
    repeats word for word. Sent twice it costs tokens and tells nothing, and
    a window chosen for the question's names picks the heading first (the
    names are in it) and the words after it not at all."""
    citation = _folded(passage.citation)
    lines = passage.text.split("\n")
    kept = 0
    while kept < len(lines) - 1 and (not lines[kept].strip() or _folded(lines[kept]) in citation):
        kept += 1
    if kept == 0 or not "".join(lines[kept:]).strip():
        return passage
    return SourcePassage.of(passage, text="\n".join(lines[kept:]))


def sent_units(text: str) -> set[str]:
    """The sentences and lines of ``text`` as ``best_window``'s ``sent`` takes them."""
    text = text.strip().removeprefix(ELLIPSIS).removesuffix(ELLIPSIS)  # a window's marks
    return {_folded(p) for p in units(text.strip())} - {""}


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def best_window(
    passage: Passage,
    question: str,
    budget_tokens: int,
    count_tokens: Callable[[Passage], int],
    sent: Collection[str] = (),
) -> Passage | None:
    """``passage`` shortened to its best run of whole sentences or lines
    within ``budget_tokens`` (its numbered block as counted by
    ``count_tokens``), marked with "…" where text was left out. None when no
    whole unit fits. ``sent``: sentences already sent in other passages
    (``sent_units``), worth nothing a second time."""
    pieces = units(passage.text.strip())
    if not pieces:
        return None
    terms = QuestionTerms.of(question)
    raw = [0.0 if _folded(p) in sent else terms.score(p) for p in pieces]
    # What answers a question usually follows the words that name its
    # subject (a definition after its term, "Returns: …" after the function's
    # name, a sentence that goes on over the next line): a unit also earns a
    # share of its predecessors' scores, halving with each step back.
    scores: list[float] = []
    carried = 0.0
    for score in raw:
        scores.append(score + carried)
        carried = FOLLOW_SHARE * (carried + score)
    header = count_tokens(SourcePassage.of(passage, text=""))
    sizes = [max(1, count_tokens(SourcePassage.of(passage, text=p)) - header) for p in pieces]
    room = budget_tokens - header - 2  # the two ellipses
    start, end = _best_run(scores, sizes, room)
    while end > start:
        window = _window_text(pieces, start, end)
        candidate = SourcePassage.of(passage, text=window)
        if count_tokens(candidate) <= budget_tokens:
            return candidate
        # Counted by parts, the whole came out longer: give up the weaker end.
        if scores[start] < scores[end - 1]:
            start += 1
        else:
            end -= 1
    return None


def _best_run(scores: Sequence[float], sizes: Sequence[int], room: int) -> tuple[int, int]:
    """The run [start, end) of the highest total score whose sizes fit
    ``room``; among equals the earliest (the start of a passage often holds
    its subject). Two pointers: linear in the number of units."""
    best = (-1.0, 0, 0)
    total = used = 0.0
    start = 0
    for end, size in enumerate(sizes, start=1):
        used += size
        total += scores[end - 1]
        while used > room and start < end:
            used -= sizes[start]
            total -= scores[start]
            start += 1
        if end > start and total > best[0]:
            best = (total, start, end)
    return best[1], best[2]


def _window_text(pieces: Sequence[str], start: int, end: int) -> str:
    text = "".join(pieces[start:end]).strip()
    if start > 0:
        text = f"{ELLIPSIS} {text}"
    if end < len(pieces):
        text = f"{text} {ELLIPSIS}"
    return text
