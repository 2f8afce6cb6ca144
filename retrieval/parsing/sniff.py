"""Which parser reads a file: by its first bytes, then its name, then its content.

Magic bytes win over the name (a PDF saved as ``.txt`` is still a PDF) and the
content has the last word on text kinds: a binary file renamed ``.txt`` is
refused as binary instead of being indexed as pages of garbage. UTF-16 text
saved without a byte-order mark (some Windows tools, PowerShell redirects)
is recognised by its pattern of zero bytes before the NUL-means-binary rule.
"""

from __future__ import annotations

import codecs
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retrieval.parsing.text_stream import MAX_CONTROL_CHAR_RATIO, detect_encoding, read_sample

Kind = Literal["pdf", "docx", "markdown", "rst", "html", "code", "text", "binary"]

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mdx"})
RST_SUFFIXES = frozenset({".rst", ".rest"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml", ".shtml"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ".log", ".csv", ".tsv", ".org", ".tex", ".srt"})
CODE_SUFFIXES = frozenset(
    {
        ".py", ".pyi", ".js", ".jsx", ".mjs", ".ts", ".tsx", ".c", ".h", ".cc", ".cpp",
        ".cxx", ".hpp", ".hh", ".cs", ".java", ".kt", ".kts", ".scala", ".go", ".rs",
        ".rb", ".php", ".pl", ".pm", ".swift", ".m", ".mm", ".lua", ".r", ".jl", ".dart",
        ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".sql", ".css", ".scss", ".less",
        ".vue", ".svelte", ".el", ".clj", ".ex", ".exs", ".erl", ".hs", ".ml", ".fs",
        ".zig", ".nim", ".toml", ".yaml", ".yml", ".ini", ".cfg", ".conf", ".json",
        ".xml", ".gradle", ".cmake", ".mk", ".proto", ".graphql", ".tf",
    }
)  # fmt: skip
CODE_NAMES = frozenset({"makefile", "dockerfile", "cmakelists.txt", "jenkinsfile", "rakefile"})
# Formats Footnote cannot read yet; named in the refusal so it is not a mystery.
KNOWN_BINARY_SUFFIXES = frozenset(
    {
        ".doc", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp", ".rtf", ".epub",
        ".png", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".heic",
        ".mp3", ".wav", ".flac", ".mp4", ".mov", ".mkv", ".zip", ".gz", ".7z", ".tar",
        ".exe", ".dll", ".so", ".dylib", ".bin", ".iso", ".dmg", ".sqlite", ".db",
    }
)  # fmt: skip

_PDF_MAGIC = b"%PDF-"
_ZIP_MAGIC = b"PK\x03\x04"
_PDF_MAGIC_WINDOW_BYTES = 1024  # the PDF spec lets the header start within the first KiB
# UTF-16 of mostly Latin-script text has a zero high byte in most characters:
# at least this share of the bytes on one side are zero ...
_UTF16_ZERO_SIDE_MIN_RATIO = 0.6
# ... and almost none on the other (the low byte is the letter).
_UTF16_OTHER_SIDE_MAX_RATIO = 0.02
_UTF16_MIN_SAMPLE_BYTES = 8


@dataclass(frozen=True)
class FileKind:
    kind: Kind
    encoding: str | None = None  # for text kinds: the encoding the file is read with


def sniff(path: Path) -> FileKind:
    """The parser for ``path`` and, for text, its encoding. Raises OSError if
    the file cannot be opened."""
    sample = read_sample(path)
    suffix = path.suffix.lower()
    if _PDF_MAGIC in sample[:_PDF_MAGIC_WINDOW_BYTES]:
        return FileKind("pdf")
    if sample.startswith(_ZIP_MAGIC):
        # A .docx that is not a Word archive goes to the DOCX parser, which
        # reports it as damaged; any other archive (.xlsx, .zip) is binary.
        return FileKind("docx") if suffix == ".docx" or _is_docx(path) else FileKind("binary")
    if suffix == ".pdf":
        # Named .pdf but no header: the PDF parser reports it as damaged.
        return FileKind("pdf")
    if suffix == ".docx":
        return FileKind("docx")
    encoding = utf16_without_bom(sample) or detect_encoding(sample)
    if encoding is None:
        return FileKind("binary")
    return FileKind(_text_kind(path, suffix, sample), encoding)


def utf16_without_bom(sample: bytes) -> str | None:
    """``utf-16-le`` or ``utf-16-be`` when ``sample`` reads as UTF-16 text without
    a byte-order mark, else None (the other rules decide)."""
    even = len(sample) - len(sample) % 2
    if even < _UTF16_MIN_SAMPLE_BYTES or sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    low_zeros = sample[0:even:2].count(0) / (even // 2)
    high_zeros = sample[1:even:2].count(0) / (even // 2)
    if high_zeros >= _UTF16_ZERO_SIDE_MIN_RATIO and low_zeros <= _UTF16_OTHER_SIDE_MAX_RATIO:
        encoding = "utf-16-le"
    elif low_zeros >= _UTF16_ZERO_SIDE_MIN_RATIO and high_zeros <= _UTF16_OTHER_SIDE_MAX_RATIO:
        encoding = "utf-16-be"
    else:
        return None
    try:
        # final=False: the sample may end inside a surrogate pair.
        text = codecs.getincrementaldecoder(encoding)().decode(sample[:even], final=False)
    except UnicodeDecodeError:
        return None
    controls = sum(1 for c in text if c < " " and c not in "\t\n\r\f")
    return encoding if controls <= MAX_CONTROL_CHAR_RATIO * len(text) else None


def sniff_kind(path: Path) -> str:
    return sniff(path).kind


def _text_kind(path: Path, suffix: str, sample: bytes) -> Kind:  # noqa: PLR0911
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    if suffix in RST_SUFFIXES:
        return "rst"
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in CODE_SUFFIXES or path.name.lower() in CODE_NAMES:
        return "code"
    if suffix in TEXT_SUFFIXES:
        return "text"
    head = sample[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if head.startswith(b"#!"):
        return "code"  # a script without an extension
    return "text"


def _is_docx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
