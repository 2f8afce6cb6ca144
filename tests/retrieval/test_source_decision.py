"""The Off / Auto / Always rule for documents (shared with the web's Auto rule)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from retrieval.source_decision import (
    STRONG_COSINE,
    WEAK_COSINE,
    SourceMode,
    decide_documents,
    is_evidence,
    no_sources_needed,
)


@dataclass(frozen=True)
class Found:
    text: str
    score: float
    matched_identifiers: tuple[str, ...] = ()
    term_coverage: float = 0.0


PLUGINS = Found("Use `llm plugins` to list the plugins you have installed.", 0.62)


@pytest.mark.parametrize(
    "question",
    [
        "Say hello in one sentence.",
        "hello",
        "Thanks, that was useful!",
        "what is 12 * 7?",
        "Write me a short story about a lighthouse keeper.",
        "Tell me a joke",
        "Translate 'good morning' into Spanish",
        "shorter please",
        "Make it shorter.",
        "in bullet points",
        "Rewrite that in a friendlier tone",
    ],
)
def test_turns_that_need_no_sources_are_not_grounded(question: str) -> None:
    assert no_sources_needed(question)
    decision = decide_documents(question, SourceMode.AUTO, [PLUGINS])
    assert not decision.use


@pytest.mark.parametrize(
    "question",
    [
        "Which command lists installed plugins?",
        "How do I store an OpenAI API key?",
        "What does the --cid option do?",
        "Tell me about the budget for 2025",
        "Why does my build fail with E1101?",
    ],
)
def test_questions_may_be_grounded(question: str) -> None:
    assert no_sources_needed(question) is None


def test_auto_sends_documents_only_with_evidence() -> None:
    question = "Which command lists installed plugins?"
    assert decide_documents(question, SourceMode.AUTO, [PLUGINS]).use
    unrelated = Found("The schema has three tables: users, posts and tags.", 0.21)
    decision = decide_documents(question, SourceMode.AUTO, [unrelated])
    assert not decision.use and "do not seem to cover" in decision.reason
    # Always sends what was found; Off sends nothing.
    assert decide_documents(question, SourceMode.ALWAYS, [unrelated]).use
    assert not decide_documents(question, SourceMode.OFF, [PLUGINS]).use
    assert not decide_documents(question, SourceMode.AUTO, []).use


def test_evidence_takes_both_retrievers_signals() -> None:
    question = "What does the --cid option do?"
    # An identifier the question names, held exactly: evidence at any cosine.
    assert is_evidence(question, Found("--cid ID  Continue the conversation ID", 0.2, ("--cid",)))
    # A high cosine alone is evidence; a middling one needs the question's words.
    assert is_evidence("How are budgets approved?", Found("x", STRONG_COSINE + 0.01))
    middling = WEAK_COSINE + 0.05
    assert is_evidence(
        "How are budgets approved?", Found("Budgets are approved in March.", middling, (), 1.0)
    )
    assert not is_evidence(
        "How are budgets approved?", Found("Travel is booked by email.", middling, (), 0.0)
    )
    assert not is_evidence("How are budgets approved?", Found("budgets approved", 0.1, (), 1.0))


def test_passages_without_measured_signals_are_measured_on_their_text() -> None:
    @dataclass(frozen=True)
    class Page:
        text: str
        score: float

    question = "How are budgets approved?"
    assert is_evidence(question, Page("Budgets are approved by the board.", WEAK_COSINE + 0.05))
    assert not is_evidence(question, Page("Parking is free on Sundays.", WEAK_COSINE + 0.05))


def test_a_dotted_name_is_found_where_its_last_part_is_defined() -> None:
    code = Found('def join(split_command):\n    """Return a shell-escaped string."""', 0.29)
    assert is_evidence("What does shlex.join do?", code)
    assert not is_evidence("What does shlex.join do?", Found("' '.join(parts)", 0.29))
