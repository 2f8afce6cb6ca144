"""A reproducible folder of documents for the parsing and indexing benchmarks.

``make_corpus(folder, pages=N)`` writes text PDFs (reportlab), DOCX files with
headings (python-docx) and Markdown with headings, about N pages in all: 60%
of the pages in PDFs of 10 pages, 20% in DOCX and 20% in Markdown, where a
DOCX or Markdown "page" is ``WORDS_PER_PAGE`` words, about a printed page.
The prose is seeded pseudo-English (common words in sentences and
paragraphs), so tokenizers and sentence splitting see realistic text and two
runs write the same corpus. A ``corpus.json`` beside the files records the
pages per file; a folder already holding the same corpus is reused.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

WORDS_PER_PAGE = 450
PDF_PAGES_PER_FILE = 10
TEXT_PAGES_PER_FILE = 5
CORPUS_VERSION = 1

# Common English words and some business/technical ones, for seeded prose.
_WORD_LIST = """
the of and to in is that for it as was with be by on not he this are or his from at which
but have an they you were her she there been one all we their has would when if so no
will more can about said what out up them some could other into only time than its new
two may first then do any like my now over such our man me even most made after also
did many before must through back years where much your way well down should because
each just those people how too little state good very make world still own see men work
long get here between both life being under never day same another know while last
might us great old year off come since against go came right used take three report
revenue market growth customer product service quarter team project budget design
system network data model index search document page chapter section result figure
table method analysis research policy energy water health school city river country
"""
_WORDS = tuple(_WORD_LIST.split())


@dataclass(frozen=True)
class Corpus:
    folder: Path
    pages: int  # page equivalents in all
    files: dict[str, int]  # file name -> pages
    pdf_pages: int
    docx_pages: int
    markdown_pages: int


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 24))]
    if rng.random() < 0.2:
        words[rng.randrange(len(words))] = str(rng.randint(2, 9999))
    return " ".join(words).capitalize() + rng.choice(".....?!")


def _paragraph(rng: random.Random, words: int) -> str:
    sentences: list[str] = []
    count = 0
    while count < words:
        sentence = _sentence(rng)
        sentences.append(sentence)
        count += len(sentence.split())
    return " ".join(sentences)


def _page_paragraphs(rng: random.Random) -> list[str]:
    """About ``WORDS_PER_PAGE`` words in 3–6 paragraphs."""
    parts = rng.randint(3, 6)
    return [_paragraph(rng, WORDS_PER_PAGE // parts) for _ in range(parts)]


def _write_pdf(path: Path, rng: random.Random, pages: int) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

    style = getSampleStyleSheet()["BodyText"]
    story: list[object] = []
    for number in range(pages):
        if number:
            story.append(PageBreak())
        # ~450 words of 10 pt text fill about two thirds of an A4 page, so
        # each generated page stays one PDF page.
        story.extend(Paragraph(p, style) for p in _page_paragraphs(rng))
    SimpleDocTemplate(str(path), pagesize=A4, invariant=1).build(story)


def _write_docx(path: Path, rng: random.Random, pages: int) -> None:
    import docx

    document = docx.Document()
    document.add_heading(f"Report {path.stem}", level=0)
    for chapter in range(pages):
        document.add_heading(f"Chapter {chapter + 1}: {_sentence(rng)[:40]}", level=1)
        for index, paragraph in enumerate(_page_paragraphs(rng)):
            if index == 2:
                document.add_heading(f"Section {chapter + 1}.{index}", level=2)
            document.add_paragraph(paragraph)
    document.save(str(path))


def _write_markdown(path: Path, rng: random.Random, pages: int) -> None:
    lines = [f"# Notes {path.stem}", ""]
    for chapter in range(pages):
        lines += [f"## Topic {chapter + 1}", ""]
        for index, paragraph in enumerate(_page_paragraphs(rng)):
            if index == 2:
                lines += [f"### Detail {chapter + 1}.{index}", ""]
            lines += [paragraph, ""]
    path.write_text("\n".join(lines))


def make_corpus(folder: Path, pages: int = 300, seed: int = 8) -> Corpus:
    """Write (or reuse) a corpus of about ``pages`` pages in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    summary_path = folder / "corpus.json"
    wanted = {"version": CORPUS_VERSION, "pages": pages, "seed": seed}
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if summary.get("request") == wanted and all(
            (folder / n).exists() for n in summary["files"]
        ):
            return _corpus(folder, summary["files"])
    rng = random.Random(seed)
    files: dict[str, int] = {}
    plan = [
        ("pdf", round(pages * 0.6), PDF_PAGES_PER_FILE, _write_pdf),
        ("docx", round(pages * 0.2), TEXT_PAGES_PER_FILE, _write_docx),
        (
            "md",
            pages - round(pages * 0.6) - round(pages * 0.2),
            TEXT_PAGES_PER_FILE,
            _write_markdown,
        ),
    ]
    for suffix, total, per_file, write in plan:
        for number, first_page in enumerate(range(0, total, per_file)):
            count = min(per_file, total - first_page)
            name = f"{suffix}-{number:04d}.{suffix}"
            write(folder / name, rng, count)
            files[name] = count
    summary_path.write_text(json.dumps({"request": wanted, "files": files}, indent=1))
    return _corpus(folder, files)


def _corpus(folder: Path, files: dict[str, int]) -> Corpus:
    def pages_of(suffix: str) -> int:
        return sum(n for name, n in files.items() if name.endswith(suffix))

    return Corpus(
        folder=folder,
        pages=sum(files.values()),
        files=dict(files),
        pdf_pages=pages_of(".pdf"),
        docx_pages=pages_of(".docx"),
        markdown_pages=pages_of(".md"),
    )


def describe(corpus: Corpus) -> dict[str, object]:
    data = asdict(corpus)
    data["folder"] = str(corpus.folder)
    data["file_count"] = len(corpus.files)
    del data["files"]
    return data
