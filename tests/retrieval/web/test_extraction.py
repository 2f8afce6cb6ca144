"""Main text out of real pages: articles, hostile pages, PDFs, plain text."""

from __future__ import annotations

from retrieval.parsing.html_text import html_to_text, page_sections
from retrieval.web.extraction import ExtractedPage, extract
from retrieval.web.http_fetch import FetchedPage
from tests.retrieval.web.site import ARTICLE_HTML, HOSTILE_HTML, PDF_PARAGRAPHS, make_pdf


def page(
    body: bytes, content_type: str = "text/html", charset: str | None = "utf-8"
) -> FetchedPage:
    url = "https://velmora.example/page"
    return FetchedPage(url, url, content_type, charset, body, truncated=False)


def test_article_main_text_with_headings_and_title_without_navigation() -> None:
    extracted = extract(page(ARTICLE_HTML.encode()))
    assert extracted.title == "The Harbour Lighthouse"
    assert "built in 1873 by the engineer Ada Brightwater" in extracted.text
    assert "Fresnel lens" in extracted.text
    assert "About us" not in extracted.text  # navigation
    assert "Cookie settings" not in extracted.text  # footer
    assert "STYLE TEXT" not in extracted.text and "color: red" not in extracted.text
    restoration = [b for b in extracted.blocks if "Fresnel" in b.text]
    assert restoration[0].heading_path[-1] == "Restoration"


def test_scripts_never_become_text_and_injection_stays_plain_text() -> None:
    extracted = extract(page(HOSTILE_HTML.encode()))
    assert "SCRIPT PAYLOAD" not in extracted.text
    assert "document.cookie" not in extracted.text
    assert "NOSCRIPT PAYLOAD" not in extracted.text
    assert "red lentils" in extracted.text
    # The injection is kept verbatim as data: the engine quotes it as untrusted.
    assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in extracted.text


def test_the_fallback_also_drops_scripts() -> None:
    title, text = html_to_text(HOSTILE_HTML)
    assert title == "Totally normal recipes"
    assert "SCRIPT PAYLOAD" not in text and "NOSCRIPT PAYLOAD" not in text
    assert "red lentils" in text


def test_the_fallback_keeps_headings_and_leaves_page_furniture_out() -> None:
    """One HTML-to-text fallback for saved pages and web pages alike."""
    title, sections = page_sections(
        "<html><head><title>Gate</title><style>p{}</style></head><body>"
        "<header>Site name</header><nav>Home | About</nav>"
        "<h1>Access</h1><p>Gate code is 4471.</p><h2>Hours</h2><p>Open&nbsp;at 6.</p>"
        "<footer>Cookie settings</footer></body></html>"
    )
    assert title == "Gate"
    assert [(s.heading_path, s.text) for s in sections] == [
        (("Access",), "Gate code is 4471."),
        (("Access", "Hours"), "Open at 6."),
    ]


def test_a_tiny_page_trafilatura_skips_still_gives_its_text() -> None:
    html = (
        b"<html><head><title>Note</title></head><body><div>Gate code is 4471.</div></body></html>"
    )
    extracted = extract(page(html))
    assert "Gate code is 4471." in extracted.text
    assert extracted.title == "Note"


def test_pdf_text_by_page_through_the_document_parser() -> None:
    extracted = extract(page(make_pdf(PDF_PARAGRAPHS), "application/pdf", None))
    pages = {b.page for b in extracted.blocks}
    assert pages == {1, 2}
    tide = [b for b in extracted.blocks if "5.2 metres" in b.text]
    assert tide and tide[0].page == 2


def test_a_damaged_pdf_gives_no_text_instead_of_raising() -> None:
    extracted = extract(page(b"%PDF-1.4 garbage", "application/pdf", None))
    assert extracted == ExtractedPage("https://velmora.example/page", "", ())


def test_plain_text_and_charsets() -> None:
    extracted = extract(
        page("Première ligne.\n\nDeuxième.".encode("latin-1"), "text/plain", "latin-1")
    )
    assert [b.text for b in extracted.blocks] == ["Première ligne.", "Deuxième."]
    guessed = extract(page("Ünïcödé text here, long enough to guess.".encode(), "text/plain", None))
    assert "Ünïcödé" in guessed.text


def test_script_like_markup_in_any_case_or_unclosed_never_becomes_text() -> None:
    html = (
        "<html><head><title>T</title></head><body><article><h1>Soup</h1>"
        "<p>Red lentils need twenty minutes of simmering before you blend them.</p>"
        "<SCRIPT>var upper = 'UPPER SCRIPT';</SCRIPT >"
        "<p>Season the soup with lemon juice and serve it with warm bread.</p>"
        "<svg><text>SVG TEXT</text></svg>"
        "<script>unclosed = 'UNCLOSED SCRIPT'; <p>swallowed</p>"
    )
    extracted = extract(page(html.encode()))
    assert "lemon juice" in extracted.text
    for payload in ("UPPER SCRIPT", "SVG TEXT", "UNCLOSED SCRIPT"):
        assert payload not in extracted.text
