"""The part of a passage that bears on the question (engine.evidence)."""

from __future__ import annotations

from engine.context import Passage, SourcePassage
from engine.evidence import (
    QuestionTerms,
    best_window,
    dedented,
    sent_units,
    units,
    without_cited_heading,
)

CODE = """def split(s, comments=False, posix=True):
    lex = shlex(s, posix=posix)
    lex.whitespace_split = True
    return list(lex)


def join(split_command):
    \"\"\"Return a shell-escaped string from *split_command*.\"\"\"
    return ' '.join(quote(arg) for arg in split_command)
"""


def words(p: Passage) -> int:
    return len(p.text.split()) + 2  # + the block's header


def test_units_are_sentences_and_lines_that_join_back() -> None:
    text = "First one. Second one!\nA line\n  indented: x = 1\nLast? Yes."
    assert "".join(units(text)) == text
    assert len(units(text)) >= 5


def test_names_count_whole_and_by_their_last_dotted_part() -> None:
    terms = QuestionTerms.of("What does shlex.join do with --cid and load_dotenv() in 3.11?")
    assert {"shlex.join", "join", "--cid", "load_dotenv", "3.11"} <= terms.names
    assert terms.score("def join(split_command):") > terms.score("def split(s):")


def test_the_window_holds_the_lines_the_question_names() -> None:
    passage = SourcePassage(CODE, "shlex.py — lines 300-310", "document", {}, "x", 0.3)
    window = best_window(passage, "What does shlex.join return?", 16, words)
    assert window is not None and words(window) <= 16
    assert "def join(split_command):" in window.text
    assert window.text.startswith("…")
    assert (window.citation, window.id) == (passage.citation, passage.id)


def test_nothing_fits_gives_none() -> None:
    passage = SourcePassage("one two three four five six seven.", "a", "document")
    assert best_window(passage, "five?", 3, words) is None


def test_indentation_all_lines_share_is_not_sent() -> None:
    assert dedented("        if x:\n            return 1\n        return 2") == (
        "if x:\n    return 1\nreturn 2"
    )
    assert dedented("Install › Linux\n    run it\n      twice") == (
        "Install › Linux\nrun it\n  twice"
    )
    assert dedented("plain\ntext") == "plain\ntext"


def test_heading_lines_the_citation_already_says_are_not_sent_twice() -> None:
    section = "Working with json › json.dumps"
    passage = SourcePassage(
        f"{section}\n\nSerialize obj to a JSON formatted str.",
        f"json-guide.docx › {section}",
        "document",
    )
    assert without_cited_heading(passage).text == "Serialize obj to a JSON formatted str."
    # A first line the citation does not hold stays, and so does a heading alone.
    kept = SourcePassage("Install › Linux\nrun it", "guide.md › Setup", "document")
    assert without_cited_heading(kept) is kept
    alone = SourcePassage(section, f"json-guide.docx › {section}", "document")
    assert without_cited_heading(alone) is alone


def test_a_sentence_another_window_carries_counts_for_nothing() -> None:
    """Overlapping chunks (or a paragraph under two headings) hold the same
    sentence: the second window goes to the passage's next best lines."""
    text = "Budgets are approved in March. Filler one. Budgets go to the board in May."
    passage = SourcePassage(text, "b.md", "document")
    first = best_window(passage, "When are budgets approved?", 10, words)
    assert first is not None and "approved in March" in first.text
    sent = sent_units(first.text)
    again = best_window(passage, "When are budgets approved?", 11, words, sent)
    assert again is not None and "the board in May" in again.text
