"""Real documents for tests and benchmarks: PDFs (reportlab), DOCX
(python-docx), Markdown, RST, HTML, code, and the bad files indexing must
survive. Every writer returns the path it wrote; the content is deterministic
so tests can assert page numbers, headings and line ranges."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

LOREM = (
    "Footnote keeps the user's documents on their own machine. Each answer cites "
    "the page it came from, so a reader can check the claim in the original. "
)


def page_text(number: int, words: int = 120) -> str:
    """Deterministic text for page ``number``, with a unique marker word."""
    base = f"Page marker zebra{number}. " + LOREM * (words // 25 + 1)
    return " ".join(base.split()[:words])


def write_text_pdf(
    path: Path,
    pages: Sequence[str],
    *,
    user_password: str | None = None,
) -> Path:
    """A PDF with one text page per entry of ``pages`` (wrapped to the page);
    with ``user_password`` it is encrypted and cannot be opened without it."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

    encrypt = None
    if user_password is not None:
        from reportlab.lib.pdfencrypt import StandardEncryption

        encrypt = StandardEncryption(user_password, ownerPassword="owner-" + user_password)
    doc = SimpleDocTemplate(str(path), pagesize=A4, encrypt=encrypt, invariant=1)
    style = getSampleStyleSheet()["BodyText"]
    story: list[object] = []
    for index, text in enumerate(pages):
        if index:
            story.append(PageBreak())
        story.extend(Paragraph(part, style) for part in text.split("\n\n"))
    doc.build(story)
    return path


def write_outlined_pdf(path: Path, outline: Sequence[tuple[int, int, str]], pages: int) -> Path:
    """A PDF of ``pages`` text pages with bookmarks: ``outline`` holds
    (1-based page, level from 0, title), in reading order."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    canvas = Canvas(str(path), pagesize=A4, invariant=1)
    for number in range(1, pages + 1):
        for index, (page, level, title) in enumerate(outline):
            if page == number:
                key = f"b{index}"
                canvas.bookmarkPage(key)
                canvas.addOutlineEntry(title, key, level=level)
        text = canvas.beginText(72, 770)
        for line in range(0, len(page_text(number)), 80):
            text.textLine(page_text(number)[line : line + 80])
        canvas.drawText(text)
        canvas.showPage()
    canvas.save()
    return path


def write_image_pdf(path: Path, pages: int = 2) -> Path:
    """A PDF whose pages carry only drawings, no text layer (like a scan)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    canvas = Canvas(str(path), pagesize=A4, invariant=1)
    for number in range(pages):
        canvas.setFillGray(0.3 + 0.1 * number)
        canvas.rect(72, 72, 300, 500, fill=1)
        canvas.circle(300, 600, 50, fill=1)
        canvas.showPage()
    canvas.save()
    return path


def write_docx(path: Path) -> Path:
    """Title, two heading levels, body paragraphs and a 3x2 table under
    "Results › Numbers"."""
    import docx

    document = docx.Document()
    document.add_heading("Quarterly report", level=0)
    document.add_paragraph("This report covers the third quarter.")
    document.add_heading("Summary", level=1)
    document.add_paragraph("Revenue grew by twelve percent over the summer.")
    document.add_heading("Results", level=1)
    document.add_paragraph("The details follow below.")
    document.add_heading("Numbers", level=2)
    table = document.add_table(rows=3, cols=2)
    for row, (left, right) in enumerate([("Region", "Sales"), ("North", "120"), ("South", "95")]):
        table.cell(row, 0).text = left
        table.cell(row, 1).text = right
    document.add_paragraph("Numbers are in thousands of euros.")
    document.add_heading("Outlook", level=1)
    document.add_paragraph("We expect steady growth next quarter.")
    document.save(str(path))
    return path


MARKDOWN = """\
# Install guide

Footnote runs on Linux, macOS and Windows.

## Linux

Install the package with your package manager.
Then start it from the menu.

### Wayland

Wayland needs no extra setup.

Setext title
------------

Text under a setext heading.

```sh
# this is a comment, not a heading
./dev run
```

# Usage

Drop a folder on the window.
"""

RST = """\
=========
User docs
=========

Intro paragraph of the user docs.

Installing
==========

Run the installer.

From source
-----------

Clone and build.

Using
=====

Open the app.
"""

HTML = """\
<!DOCTYPE html>
<html><head><title>Widget handbook</title>
<script>var tracking = "do not index this script";</script>
<style>body { color: red; }</style></head>
<body>
<nav><a href="/">Home</a> <a href="/about">About us menu</a></nav>
<article>
<h1>Widget handbook</h1>
<p>The widget handbook explains how to set up and maintain a widget at home,
with enough words in each paragraph to count as main content.</p>
<h2>Cleaning</h2>
<p>Clean the widget with a dry cloth once a week; never put it in water,
because the electronics inside are not sealed against moisture.</p>
<h2>Storage</h2>
<p>Store the widget in a cool and dry place away from direct sunlight so the
battery keeps its capacity for many years of regular use.</p>
</article>
<footer>Copyright footer text</footer>
</body></html>
"""


def code_text(functions: int = 6, body_lines: int = 12) -> str:
    lines = ['"""A generated module."""', "", "import os", ""]
    for number in range(functions):
        lines += ["", f"def function_{number}(value):", f'    """Function {number}."""']
        lines += [f"    value = value + {i}  # step {i}" for i in range(body_lines)]
        lines += ["    return value", ""]
    return "\n".join(lines) + "\n"


LATIN1_TEXT = (
    "Le café de la gare est fermé le dimanche. "
    "Les élèves préfèrent le thé à la crème brûlée, "
    "et le garçon déçu répète: où est passé l'été?\n"
) * 5


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def write_good_files(folder: Path) -> dict[str, Path]:
    """One readable file of every kind Footnote parses."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = [page_text(n) for n in range(1, 4)]
    return {
        "pdf": write_text_pdf(folder / "report.pdf", pages),
        "docx": write_docx(folder / "quarterly.docx"),
        "markdown": write_bytes(folder / "guide.md", MARKDOWN.encode()),
        "rst": write_bytes(folder / "docs.rst", RST.encode()),
        "html": write_bytes(folder / "handbook.html", HTML.encode()),
        "code": write_bytes(folder / "module.py", code_text().encode()),
        "latin1": write_bytes(folder / "cafe.txt", LATIN1_TEXT.encode("latin-1")),
    }


def write_bad_files(folder: Path) -> dict[str, Path]:
    """Files that must be skipped with a reason, never crash indexing."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "encrypted": write_text_pdf(folder / "secret.pdf", [page_text(1)], user_password="pw"),
        "scanned": write_image_pdf(folder / "scan.pdf"),
        "empty": write_bytes(folder / "empty.txt", b""),
        # PNG header and random-looking bytes, renamed .txt
        "binary": write_bytes(folder / "photo.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40),
        "corrupt_pdf": write_bytes(folder / "broken.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Cat"),
    }
    good = write_text_pdf(folder / "whole.pdf", [page_text(1), page_text(2)])
    truncated = folder / "truncated.pdf"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    good.unlink()
    files["truncated_pdf"] = truncated
    # A folder named like a file: it cannot be read as one (tests run as root,
    # for whom chmod 000 does not make a file unreadable).
    (folder / "notes.txt").mkdir()
    files["folder_named_txt"] = folder / "notes.txt"
    fifo = folder / "pipe.txt"
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
        files["fifo"] = fifo
    return files


def write_non_utf8_name(folder: Path, text: str = "Bytes in the name are not UTF-8.\n") -> Path:
    """A file whose name is Latin-1 bytes (invalid UTF-8): 'caf\\xe9.txt'."""
    name = os.fsdecode(b"caf\xe9.txt")  # surrogateescape: 'caf\udce9.txt'
    path = folder / name
    path.write_text(text)
    return path
