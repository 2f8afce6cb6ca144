"""The Off / Auto / Always rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from retrieval.source_decision import WEAK_COSINE
from retrieval.web.need_search import WebMode, need_search

TODAY = date(2026, 12, 2)


@dataclass(frozen=True)
class Doc:
    text: str
    score: float


GOOD_DOCS = [Doc("Velmora's lighthouse was restored in 1957 by the town council.", 0.71)]


def auto(question: str, docs: list[Doc] | None = None) -> bool:
    return need_search(question, WebMode.AUTO, docs or [], today=TODAY).use


def test_off_never_searches_and_always_always_does() -> None:
    assert not need_search("latest news about Velmora", WebMode.OFF, [], today=TODAY)
    assert need_search("hello", WebMode.ALWAYS, GOOD_DOCS, today=TODAY)
    assert not need_search("   ", WebMode.ALWAYS, [], today=TODAY)


@pytest.mark.parametrize(
    "question",
    [
        "hello",
        "Hi there!",
        "thanks, that helps",
        "2 + 2 * 7",
        "what is 17 * 23?",
        "translate this into French: the cat sleeps",
        "Fix this code: for i in range(10) print(i)",
        "rewrite the paragraph below in a friendlier tone",
        "Summarize this email for me",
        "write a poem about autumn",
    ],
)
def test_auto_skips_chit_chat_maths_and_text_work(question: str) -> None:
    assert not auto(question)  # even with no documents at all


@pytest.mark.parametrize(
    "question",
    [
        "What is the latest version of Python?",
        "weather in Lisbon today",
        "current price of copper",
        "news about the Velmora lighthouse",
        "Who won the 2026 world cup?",
        "what happened in 2025 in Velmora",
    ],
)
def test_auto_searches_for_recency_even_when_documents_match(question: str) -> None:
    assert auto(question, GOOD_DOCS)


def test_auto_searches_without_documents_or_with_poor_matches() -> None:
    assert auto("how tall is the lighthouse of Velmora")
    weak = [Doc("Notes on harbour paint colours", WEAK_COSINE - 0.05)]
    decision = need_search("how tall is the lighthouse of Velmora", WebMode.AUTO, weak, today=TODAY)
    assert decision.use and "do not cover" in decision.reason


def test_auto_searches_for_names_the_documents_do_not_mention() -> None:
    decision = need_search(
        "When did Ada Brightwater restore the Velmora lighthouse?",
        WebMode.AUTO,
        GOOD_DOCS,
        today=TODAY,
    )
    assert decision.use and "Ada Brightwater" in decision.reason
    assert auto("Was the NASA archive used for Velmora's lighthouse?", GOOD_DOCS)


def test_auto_answers_from_documents_that_cover_the_question() -> None:
    decision = need_search(
        "When was the lighthouse of Velmora restored?", WebMode.AUTO, GOOD_DOCS, today=TODAY
    )
    assert not decision.use and decision.reason == "the documents cover this"
    # An old year is not "recent".
    assert not auto("Was Velmora's lighthouse restored in 1957?", GOOD_DOCS)
