"""Chunking with all-MiniLM-L6-v2's own tokenizer: size limits, structure,
overlap, locators and stable ids."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from retrieval.chunking import (
    CHUNK_MAX_TOKENS,
    Chunk,
    chunk_sections,
    content_hash,
)
from retrieval.parsing import Section, iter_sections
from tests.retrieval.make_files import code_text, write_non_utf8_name

Counter = Callable[[str], int]

SENTENCES = [
    f"Sentence number {n} explains how the {('red', 'green', 'blue')[n % 3]} widget "
    f"is assembled from part {n * 7} and tested for {n % 11} hours."
    for n in range(400)
]


def chunks_of(path: Path, count: Counter, **options: int) -> list[Chunk]:
    return list(chunk_sections(path, iter_sections(path), count, **options))


def test_the_default_size_stays_inside_minilm_window() -> None:
    assert 128 < CHUNK_MAX_TOKENS <= 256


def test_no_chunk_of_any_file_exceeds_the_limit(
    good_files: dict[str, Path], minilm_count_tokens: Counter
) -> None:
    for path in good_files.values():
        chunks = chunks_of(path, minilm_count_tokens)
        assert chunks, path.name
        for chunk in chunks:
            assert minilm_count_tokens(chunk.text) <= CHUNK_MAX_TOKENS


@pytest.mark.parametrize("max_tokens", [16, 64, 224])
def test_long_text_is_cut_within_the_limit_and_loses_nothing(
    minilm_count_tokens: Counter, max_tokens: int
) -> None:
    blob = "x" * 3000  # one "word" longer than any chunk (a hash dump)
    long_sentence = " ".join(f"word{n}" for n in range(600))  # no punctuation at all
    text = "\n\n".join([" ".join(SENTENCES[:60]), blob, long_sentence, "Short tail."])
    section = Section(text, line_start=1, line_end=text.count("\n") + 1)
    chunks = list(chunk_sections(Path("long.txt"), [section], minilm_count_tokens, max_tokens, 4))
    for chunk in chunks:
        assert minilm_count_tokens(chunk.text) <= max_tokens
    joined = " ".join(c.text for c in chunks)
    for word in [*text.split(), "Short tail."]:
        if word != blob:
            assert word in joined
    assert sum(c.text.count("x") for c in chunks) >= len(blob)


def test_counting_calls_grow_linearly(minilm_count_tokens: Counter) -> None:
    calls = 0

    def counting(text: str) -> int:
        nonlocal calls
        calls += 1
        return minilm_count_tokens(text)

    text = " ".join(SENTENCES)  # one paragraph of 400 sentences
    chunks = list(chunk_sections(Path("p.txt"), [Section(text)], counting))
    assert len(chunks) > 20
    # Once per sentence plus once per chunk (and a few for the paragraph), not
    # once per sentence per chunk.
    assert calls <= len(SENTENCES) + 2 * len(chunks) + 5


def test_chunks_overlap_within_a_section_by_whole_sentences(minilm_count_tokens: Counter) -> None:
    text = " ".join(SENTENCES[:80])
    chunks = list(chunk_sections(Path("p.txt"), [Section(text)], minilm_count_tokens, 120, 40))
    assert len(chunks) > 3
    for before, after in itertools.pairwise(chunks):
        first_sentence = after.text.split(". ", 1)[0]
        overlap = before.text[before.text.index(first_sentence) :]
        assert after.text.startswith(overlap)  # whole sentences from before's end
        assert 0 < minilm_count_tokens(overlap) - 2 <= 40


def test_no_overlap_when_asked_for_none(minilm_count_tokens: Counter) -> None:
    text = " ".join(SENTENCES[:80])
    chunks = list(chunk_sections(Path("p.txt"), [Section(text)], minilm_count_tokens, 120, 0))
    assert " ".join(c.text for c in chunks) == text


def test_pdf_chunks_never_span_pages(
    good_files: dict[str, Path], minilm_count_tokens: Counter
) -> None:
    chunks = chunks_of(good_files["pdf"], minilm_count_tokens, max_tokens=64)
    pages = [c.locator.page for c in chunks]
    assert pages == sorted(pages) and set(pages) == {1, 2, 3}
    for chunk in chunks:
        assert chunk.locator.path == str(good_files["pdf"].absolute())
        marker = f"zebra{chunk.locator.page}."
        if "zebra" in chunk.text:
            assert marker in chunk.text
    assert chunks[0].locator.citation() == "report.pdf, p. 1"


def test_headings_are_written_at_the_top_and_kept_in_the_locator(
    good_files: dict[str, Path], minilm_count_tokens: Counter
) -> None:
    chunks = chunks_of(good_files["markdown"], minilm_count_tokens)
    wayland = next(c for c in chunks if "Wayland needs" in c.text)
    assert wayland.text == "Install guide › Linux › Wayland\nWayland needs no extra setup."
    assert wayland.locator.heading_path == ("Install guide", "Linux", "Wayland")
    assert (wayland.locator.line_start, wayland.locator.line_end) == (12, 12)
    docx_chunks = chunks_of(good_files["docx"], minilm_count_tokens)
    table = next(c for c in docx_chunks if "North | 120" in c.text)
    # "Results" holds one tiny sentence: it joins the chunk of its subsection.
    assert table.text.startswith(
        "Quarterly report › Results › Numbers\nThe details follow below.\n\nRegion | Sales"
    )
    assert table.locator.citation() == "quarterly.docx › Quarterly report › Results › Numbers"


def test_a_very_long_heading_path_is_shortened(minilm_count_tokens: Counter) -> None:
    headings = tuple(f"Chapter {n} about many important things" for n in range(30))
    chunks = list(
        chunk_sections(
            Path("h.md"), [Section("Body text.", heading_path=headings)], minilm_count_tokens
        )
    )
    assert chunks[0].text == "Chapter 29 about many important things\nBody text."
    assert chunks[0].locator.heading_path == headings


def test_code_chunks_have_line_ranges_matching_their_text(
    good_files: dict[str, Path], minilm_count_tokens: Counter
) -> None:
    lines = code_text().splitlines()
    for max_tokens in (40, 224):
        chunks = chunks_of(good_files["code"], minilm_count_tokens, max_tokens=max_tokens)
        assert len(chunks) > 1
        for chunk in chunks:
            start, end = chunk.locator.line_start, chunk.locator.line_end
            assert start is not None and end is not None
            body = chunk.text.splitlines()
            assert body[0].strip() == lines[start - 1].strip()
            assert body[-1].strip() == lines[end - 1].strip()
            assert chunk.text == "\n".join(lines[start - 1 : end]).strip("\n")


def test_text_chunks_span_sections_but_not_headings(minilm_count_tokens: Counter) -> None:
    first, second = SENTENCES[1], SENTENCES[2]
    sections = [
        Section(first, line_start=1, line_end=1),
        Section(second, line_start=3, line_end=3),
        Section("Under a heading.", heading_path=("H",), line_start=6, line_end=6),
    ]
    chunks = list(chunk_sections(Path("t.txt"), sections, minilm_count_tokens))
    assert [(c.text, c.locator.line_start, c.locator.line_end) for c in chunks] == [
        (f"{first}\n\n{second}", 1, 3),
        ("H\nUnder a heading.", 6, 6),
    ]


def test_ids_are_stable_and_depend_on_text_and_place(
    good_files: dict[str, Path], minilm_count_tokens: Counter
) -> None:
    first = chunks_of(good_files["pdf"], minilm_count_tokens)
    again = chunks_of(good_files["pdf"], minilm_count_tokens)
    assert [c.id for c in first] == [c.id for c in again]
    chunk = first[0]
    assert chunk.content_hash == hashlib.sha256(chunk.text.encode()).hexdigest()
    assert chunk.content_hash == content_hash(chunk.text)
    where = json.dumps(chunk.locator.to_dict(), sort_keys=True)
    assert chunk.id == hashlib.sha256((chunk.content_hash + where).encode()).hexdigest()[:32]
    assert len({c.id for c in first}) == len(first)
    # The same text at another place is another chunk.
    moved = list(
        chunk_sections(
            Path("/elsewhere/report.pdf"), iter_sections(good_files["pdf"]), minilm_count_tokens
        )
    )
    assert moved[0].content_hash == chunk.content_hash and moved[0].id != chunk.id


def test_blank_sections_give_no_chunks(minilm_count_tokens: Counter) -> None:
    sections = [Section("   \n\n  "), Section("")]
    assert list(chunk_sections(Path("b.txt"), sections, minilm_count_tokens)) == []


def test_a_limit_without_room_for_text_is_refused(minilm_count_tokens: Counter) -> None:
    with pytest.raises(ValueError, match="no room"):
        list(chunk_sections(Path("x.txt"), [Section("text")], minilm_count_tokens, 4))


def test_chunks_stream_from_an_endless_run_of_sections(minilm_count_tokens: Counter) -> None:
    """A huge text file is one run of sections: chunks must come while it is read."""

    def endless() -> Iterator[Section]:
        for number in itertools.count(1):
            yield Section(SENTENCES[number % len(SENTENCES)], line_start=number, line_end=number)

    first = list(
        itertools.islice(chunk_sections(Path("big.log"), endless(), minilm_count_tokens), 10)
    )
    assert len(first) == 10
    assert [c.locator.line_start for c in first] == sorted(c.locator.line_start for c in first)


def test_a_file_name_that_is_not_utf8_still_gives_ids(
    tmp_path: Path, minilm_count_tokens: Counter
) -> None:
    path = write_non_utf8_name(tmp_path)
    (chunk,) = chunks_of(path, minilm_count_tokens)
    assert chunk.locator.path == str(path.absolute())  # the real name, to open it
    assert len(chunk.id) == 32
    assert chunk.locator.citation().encode("utf-8", "surrogateescape")


# ----------------------------------------------------------------- chunk hygiene


def heading_chunks(sections: list[Section], count: Counter) -> list[tuple[str, tuple[str, ...]]]:
    chunks = chunk_sections(Path("doc.md"), sections, count)
    return [(c.text, c.locator.heading_path) for c in chunks]


def test_a_myst_label_never_becomes_a_chunk(tmp_path: Path, minilm_count_tokens: Counter) -> None:
    """Seen on a real folder: ``(installing-plugins)=`` became a chunk of its
    own, ranked #5 with cosine 0.66 and went to the model as source [1]."""
    path = tmp_path / "plugins.md"
    path.write_text(
        "# Plugins\n\n(installing-plugins)=\n## Installing plugins\n\n"
        "Run the plugin installer and choose a plugin from the catalogue list.\n"
    )
    chunks = chunks_of(path, minilm_count_tokens)
    assert [c.text for c in chunks] == [
        "Plugins › Installing plugins\n"
        "Run the plugin installer and choose a plugin from the catalogue list."
    ]


def test_a_tiny_section_joins_the_chunk_of_its_subsection(minilm_count_tokens: Counter) -> None:
    """ "See below." under A says nothing alone: it goes with A › B, whose
    heading path the chunk takes, and whose line range it widens."""
    body = SENTENCES[5]
    sections = [
        Section("See below.", heading_path=("A",), line_start=3, line_end=3),
        Section("Overview:", heading_path=("A", "B"), line_start=7, line_end=7),
        Section(body, heading_path=("A", "B", "C"), line_start=11, line_end=11),
    ]
    chunks = list(chunk_sections(Path("doc.md"), sections, minilm_count_tokens))
    assert [(c.text, c.locator.heading_path) for c in chunks] == [
        (f"A › B › C\nSee below.\n\n\n\nOverview:\n\n\n\n{body}", ("A", "B", "C"))
    ]
    assert (chunks[0].locator.line_start, chunks[0].locator.line_end) == (3, 11)


def test_a_tiny_section_before_a_sibling_stays_a_chunk_of_its_own(
    minilm_count_tokens: Counter,
) -> None:
    """Merged into a sibling, its locator would name a heading it is not under."""
    sections = [
        Section("Works on Wayland.", heading_path=("Linux", "Wayland")),
        Section(SENTENCES[7], heading_path=("Linux", "X11")),
        Section("The end.", heading_path=("Linux", "X11")),
    ]
    assert heading_chunks(sections, minilm_count_tokens) == [
        ("Linux › Wayland\nWorks on Wayland.", ("Linux", "Wayland")),
        (f"Linux › X11\n{SENTENCES[7]}\n\nThe end.", ("Linux", "X11")),
    ]


def test_a_tiny_page_does_not_join_the_next_page(minilm_count_tokens: Counter) -> None:
    sections = [Section("Page 3 of 9", page=3), Section(SENTENCES[1], page=4)]
    chunks = list(chunk_sections(Path("r.pdf"), sections, minilm_count_tokens))
    assert [(c.text, c.locator.page) for c in chunks] == [
        ("Page 3 of 9", 3),
        (SENTENCES[1], 4),
    ]


def test_text_without_a_letter_or_digit_makes_no_chunk(minilm_count_tokens: Counter) -> None:
    sections = [
        Section("* * *"),
        Section("|---|---|\n| — | — |", heading_path=("Table",)),
        Section("→ ✓ ✓ ✓", heading_path=("Marks",)),
    ]
    assert heading_chunks(sections, minilm_count_tokens) == []


def test_rules_between_paragraphs_never_start_or_end_a_chunk(minilm_count_tokens: Counter) -> None:
    text = "\n\n-----\n\n".join(SENTENCES[:40])
    chunks = list(chunk_sections(Path("t.txt"), [Section(text)], minilm_count_tokens, 64, 16))
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text.startswith("Sentence") and chunk.text.endswith(".")
