"""Ranking page text with the documents' real embedder (MiniLM)."""

from __future__ import annotations

import threading
from typing import Any

from retrieval.web.extraction import ExtractedPage, TextBlock
from retrieval.web.ranking import RankLimits, rank_pages

LIGHTHOUSE = ExtractedPage(
    "https://velmora.example/lighthouse",
    "The Harbour Lighthouse",
    (
        TextBlock(
            "The harbour lighthouse of Velmora was built in 1873 by the engineer Ada "
            "Brightwater. It stands 41 metres tall on the northern breakwater.",
            ("The Harbour Lighthouse",),
        ),
        TextBlock("The museum opens from April to October.", ("Visiting",)),
    ),
)
BAKERY = ExtractedPage(
    "https://bread.example/rye",
    "Rye bread",
    (TextBlock("Rye sourdough needs a long, cool fermentation and a very hot oven."),),
)


def test_the_answering_passage_ranks_first_with_a_web_locator(embedder: Any) -> None:
    passages = rank_pages(
        "Who built the Velmora lighthouse?", [BAKERY, LIGHTHOUSE], embedder, threading.Event()
    )
    best = passages[0]
    assert "Ada Brightwater" in best.text
    assert best.kind == "web"
    assert best.locator.url == "https://velmora.example/lighthouse"
    assert best.locator.title == "The Harbour Lighthouse"
    assert best.citation == "The Harbour Lighthouse — velmora.example"
    assert best.id.startswith("web:")
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert 0.3 < best.score <= 1.0  # cosine, comparable with document scores
    rye = next(p for p in passages if "Rye" in p.text)
    assert rye.score < best.score - 0.3  # unrelated text scores far lower


def test_chunks_stay_within_the_token_limit(embedder: Any) -> None:
    long_text = " ".join(
        f"Sentence number {i} says something about Velmora's harbour." for i in range(200)
    )
    page = ExtractedPage("https://velmora.example/long", "Long", (TextBlock(long_text),))
    # (duplicate_cosine > 1: these near-identical sentences would all be "duplicates")
    limits = RankLimits(
        top_passages=100, per_domain=100, max_chunks_per_page=100, duplicate_cosine=1.1
    )
    passages = rank_pages("Velmora harbour", [page], embedder, threading.Event(), limits)
    assert len(passages) > 10
    assert all(embedder.count_tokens(p.text) <= limits.chunk_max_tokens for p in passages)
    # Sentence-aware: chunks end at a sentence end (or at the text's end).
    assert all(p.text.rstrip().endswith(".") for p in passages)


def test_near_duplicates_are_dropped(embedder: Any) -> None:
    mirror = ExtractedPage("https://mirror.example/copy", "Copy", LIGHTHOUSE.blocks)
    passages = rank_pages(
        "Who built the Velmora lighthouse?", [LIGHTHOUSE, mirror], embedder, threading.Event()
    )
    texts = [p.text for p in passages]
    assert len([t for t in texts if "Ada Brightwater" in t]) == 1


def test_one_site_cannot_fill_the_context(embedder: Any) -> None:
    facts = [
        TextBlock(f"Velmora fact {i}: the harbour has {i + 3} piers for fishing boats.", (f"H{i}",))
        for i in range(10)
    ]
    one_site = ExtractedPage("https://www.velmora.example/facts", "Facts", tuple(facts))
    other = ExtractedPage("https://velmora.example/other", "Other", (facts[0],))
    limits = RankLimits(top_passages=8, per_domain=3)
    passages = rank_pages(
        "Velmora harbour piers", [one_site, other], embedder, threading.Event(), limits
    )
    # www.velmora.example and velmora.example are one site.
    assert len(passages) == 3


def test_pdf_passages_link_to_their_page(embedder: Any) -> None:
    pdf = ExtractedPage(
        "https://velmora.example/tides.pdf",
        "Tides",
        (
            TextBlock("Tide tables for Velmora.", page=1),
            TextBlock("Spring tide reaches 5.2 metres.", page=2),
        ),
    )
    best = rank_pages("How high is the spring tide?", [pdf], embedder, threading.Event())[0]
    assert best.locator.url == "https://velmora.example/tides.pdf#page=2"
    assert best.locator.page == 2


def test_cancel_and_empty_input(embedder: Any) -> None:
    cancelled = threading.Event()
    cancelled.set()
    assert rank_pages("q", [LIGHTHOUSE], embedder, cancelled) == []
    assert rank_pages("q", [], embedder, threading.Event()) == []


def test_cosine_rescored_puts_document_passages_on_the_web_scale(embedder: Any) -> None:
    from retrieval.locator import Locator
    from retrieval.passage import RetrievedPassage
    from retrieval.web.ranking import cosine_rescored

    passages = [
        RetrievedPassage(
            "Rye bread needs a hot oven.", Locator(kind="document", path="/a"), "a", 0.03
        ),
        RetrievedPassage(
            "Ada Brightwater built the Velmora lighthouse.",
            Locator(kind="document", path="/b"),
            "b",
            0.02,
        ),
    ]
    rescored = cosine_rescored("Who built the Velmora lighthouse?", passages, embedder)
    assert [p.id for p in rescored] == ["a", "b"]  # order kept
    assert rescored[1].score > 0.5 > rescored[0].score
    assert rescored[1].text == passages[1].text and rescored[1].locator == passages[1].locator
