"""The folder ``bench.grounding`` asks questions of, built at bench time from
public material already on this machine (nothing large is committed):

* ``code/``: source files as they are installed (python-dotenv's API and
  CLI, pathspec, the standard library's ``shlex`` and ``textwrap``);
* ``docs/click-parameters.md``: click's parameter docstrings as a Markdown
  reference (headings per class or decorator);
* ``reports/statistics-reference.pdf``: the standard library's
  ``statistics`` docstrings set as a PDF with reportlab (a dev dependency);
* ``reports/json-guide.docx``: the standard library's ``json`` docstrings as
  a Word file with python-docx (a runtime dependency).

So the folder mixes code, Markdown, PDF and DOCX the way a user's does. Each
question in ``bench/grounding_questions.json`` names the file that answers
it; a file whose material is missing here (a package not installed) is left
out and its questions are reported as skipped, never as misses.
"""

from __future__ import annotations

import importlib
import inspect
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

# (file in the folder, module whose installed source is copied)
CODE_FILES = (
    ("code/dotenv/main.py", "dotenv.main"),
    ("code/dotenv/cli.py", "dotenv.cli"),
    ("code/pathspec/pathspec.py", "pathspec.pathspec"),
    ("code/pathspec/gitignore.py", "pathspec.gitignore"),
    ("code/stdlib/shlex.py", "shlex"),
    ("code/stdlib/textwrap.py", "textwrap"),
)
CLICK_OBJECTS = (
    "Parameter",
    "Option",
    "Argument",
    "Choice",
    "Path",
    "option",
    "confirmation_option",
    "password_option",
    "version_option",
)
STATISTICS_OBJECTS = (
    "mean",
    "fmean",
    "geometric_mean",
    "harmonic_mean",
    "median",
    "median_low",
    "median_high",
    "median_grouped",
    "mode",
    "multimode",
    "quantiles",
    "pstdev",
    "pvariance",
    "stdev",
    "variance",
    "covariance",
    "correlation",
    "linear_regression",
    "NormalDist",
)
JSON_OBJECTS = ("dump", "dumps", "load", "loads", "JSONDecodeError", "JSONEncoder", "JSONDecoder")


def build_folder(root: Path) -> dict[str, str]:
    """Write the folder under ``root`` (emptied first). Returns each file
    written -> where its material came from; missing material is left out."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    written: dict[str, str] = {}
    for relative, module_name in CODE_FILES:
        source = getattr(_module(module_name), "__file__", None)
        if not source:
            continue
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written[relative] = f"{module_name} {_version(module_name)} (installed source)"
    makers: tuple[tuple[str, str, tuple[str, ...], Callable[[Path, str, list], None]], ...] = (
        ("docs/click-parameters.md", "click", CLICK_OBJECTS, _write_markdown),
        ("reports/statistics-reference.pdf", "statistics", STATISTICS_OBJECTS, _write_pdf),
        ("reports/json-guide.docx", "json", JSON_OBJECTS, _write_docx),
    )
    for relative, module_name, names, write in makers:
        sections = _docstrings(module_name, names)
        if not sections:
            continue
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write(target, module_name, sections)
        written[relative] = f"{module_name} {_version(module_name)} docstrings"
    return written


def _module(name: str) -> object | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _version(module_name: str) -> str:
    import importlib.metadata
    import sys

    top = module_name.split(".", maxsplit=1)[0]
    if top in sys.stdlib_module_names:
        return f"(Python {sys.version.split()[0]})"
    dist = {"dotenv": "python-dotenv"}.get(top, top)
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "(unknown version)"


def _docstrings(module_name: str, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(heading, docstring) for the module and each named object."""
    module = _module(module_name)
    if module is None:
        return []
    sections = [(module_name, inspect.getdoc(module) or "")]
    for name in names:
        obj = getattr(module, name, None)
        doc = inspect.getdoc(obj) if obj is not None else None
        if doc:
            sections.append((f"{module_name}.{name}", doc))
    return [(h, d) for h, d in sections if d.strip()]


def _blocks(doc: str) -> list[tuple[bool, str]]:
    """A docstring as (is_code, text) blocks: doctest and indented blocks are code."""
    blocks = []
    for block in doc.split("\n\n"):
        if not block.strip():
            continue
        lines = block.splitlines()
        code = lines[0].lstrip().startswith(">>>") or all(
            line.startswith(("    ", "\t")) or not line.strip() for line in lines
        )
        blocks.append((code, textwrap.dedent(block) if code else block))
    return blocks


def _write_markdown(path: Path, module_name: str, sections: list[tuple[str, str]]) -> None:
    parts = [f"# {module_name}: parameters and options reference\n"]
    for heading, doc in sections:
        parts.append(f"## {heading}\n")
        for code, text in _blocks(doc):
            parts.append(f"```\n{text}\n```\n" if code else f"{text}\n")
    path.write_text("\n".join(parts), encoding="utf-8")


def _write_pdf(path: Path, module_name: str, sections: list[tuple[str, str]]) -> None:
    from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
    from reportlab.lib.styles import getSampleStyleSheet  # type: ignore[import-untyped]
    from reportlab.platypus import (  # type: ignore[import-untyped]
        Paragraph,
        Preformatted,
        SimpleDocTemplate,
        Spacer,
    )

    styles = getSampleStyleSheet()
    story: list[object] = [Paragraph(f"The {module_name} module: reference", styles["Title"])]
    for heading, doc in sections:
        story.append(Paragraph(escape(heading), styles["Heading2"]))
        for code, text in _blocks(doc):
            if code:
                story.append(Preformatted(text, styles["Code"]))
            else:
                story.append(Paragraph(escape(" ".join(text.split())), styles["BodyText"]))
            story.append(Spacer(1, 4))
    SimpleDocTemplate(str(path), pagesize=A4, title=f"{module_name} reference").build(story)


def _write_docx(path: Path, module_name: str, sections: list[tuple[str, str]]) -> None:
    import docx

    document = docx.Document()
    document.add_heading(f"Working with {module_name}", level=1)
    for heading, doc in sections:
        document.add_heading(heading, level=2)
        for code, text in _blocks(doc):
            document.add_paragraph(text if code else " ".join(text.split()))
    document.save(str(path))
