"""Which parser reads a file: by its first bytes, then its name, then its content.

Magic bytes win over the name (a PDF saved as ``.txt`` is still a PDF) and the
content has the last word on text kinds: a binary file renamed ``.txt`` is
refused as binary instead of being indexed as pages of garbage.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retrieval.parsing.text_stream import detect_encoding, read_sample

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
    encoding = detect_encoding(sample)
    if encoding is None:
        return FileKind("binary")
    return FileKind(_text_kind(path, suffix, sample), encoding)


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
