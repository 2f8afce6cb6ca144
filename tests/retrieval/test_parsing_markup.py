"""Markdown and RST markup without content never reaches a chunk: labels and
targets, front matter, tables of contents, link-only navigation, badges.
Every section that remains is still the file's own lines, numbered as in the
file."""

from __future__ import annotations

from pathlib import Path

from retrieval.parsing import Section
from retrieval.parsing.markup_noise import is_badge_line, is_navigation_item
from retrieval.parsing.parsers import iter_sections

MYST = """\
---
title: Plugins
tags: [extending, plugins]
---
[![CI](https://ci.example.org/badge.svg)](https://ci.example.org) ![PyPI](https://img.example.org/v.svg)

(plugins)=
# Plugins {#plugins}

```{toctree}
:maxdepth: 2

installing
writing
```

- [Installing plugins](installing.md)
- {doc}`writing`
- [Back to the top](#plugins)

(installing-plugins)=
## Installing plugins

Run `footnote plugin install NAME` to add a plugin from the catalogue.

<!-- TODO: screenshots -->
<a name="catalogue"></a>
- [The catalogue](https://plugins.example.org)

```text
(this-stays)=
- [code](is.md)
```

[catalogue]: https://plugins.example.org "Catalogue"
"""

RST = """\
.. _top:

=====
Guide
=====

.. contents:: On this page
   :local:

.. toctree::
   :maxdepth: 2

   install
   usage

.. _installing:

Installing
==========

Run the installer with ``--user``.

.. note::

   Admin rights are not needed.

.. This comment is not shown
   to readers.

* :ref:`genindex`
* :doc:`usage`
* `Python downloads <https://python.org/downloads>`_

.. |logo| image:: logo.png
"""


def sections_of(tmp_path: Path, name: str, text: str) -> list[Section]:
    path = tmp_path / name
    path.write_text(text)
    found = list(iter_sections(path))
    lines = text.splitlines()
    for section in found:  # every section is the file's own consecutive lines
        assert section.line_start is not None and section.line_end is not None
        assert section.text == "\n".join(lines[section.line_start - 1 : section.line_end])
    return found


def test_myst_labels_toc_navigation_and_front_matter_are_dropped(tmp_path: Path) -> None:
    found = sections_of(tmp_path, "plugins.md", MYST)
    assert [(s.heading_path, s.text) for s in found] == [
        (
            ("Plugins", "Installing plugins"),
            "Run `footnote plugin install NAME` to add a plugin from the catalogue.",
        ),
        (
            ("Plugins", "Installing plugins"),
            "- [The catalogue](https://plugins.example.org)\n\n"
            "```text\n(this-stays)=\n- [code](is.md)\n```",  # code is code
        ),
    ]


def test_rst_labels_directives_comments_and_navigation_are_dropped(tmp_path: Path) -> None:
    found = sections_of(tmp_path, "guide.rst", RST)
    assert [(s.heading_path, s.text) for s in found] == [
        (
            ("Guide", "Installing"),
            "Run the installer with ``--user``.\n\n.. note::\n\n   Admin rights are not needed.",
        ),
        (("Guide", "Installing"), "* `Python downloads <https://python.org/downloads>`_"),
    ]


def test_a_rule_at_the_top_is_not_taken_for_front_matter(tmp_path: Path) -> None:
    text = "---\nThis note starts with a rule.\n\n---\n\nAnd goes on.\n"
    found = sections_of(tmp_path, "note.md", text)
    assert "This note starts with a rule." in "\n".join(s.text for s in found)
    unclosed = "---\ntitle: never closed\n\nBody text that is real.\n"
    found = sections_of(tmp_path, "unclosed.md", unclosed)
    assert "Body text that is real." in "\n".join(s.text for s in found)


def test_toml_front_matter_is_dropped(tmp_path: Path) -> None:
    text = '+++\ntitle = "Notes"\n[params]\ndraft = true\n+++\n\nThe notes begin here.\n'
    found = sections_of(tmp_path, "notes.md", text)
    assert [s.text for s in found] == ["The notes begin here."]


def test_navigation_means_links_inside_the_documentation_only() -> None:
    assert is_navigation_item("- [Install](install.md)")
    assert is_navigation_item("  * [Sub](#sub), [Other](../other/)")
    assert is_navigation_item("1. {ref}`label`")
    assert is_navigation_item("- :doc:`usage`")
    assert is_navigation_item("- `Usage`_")
    assert not is_navigation_item("- [Windows installer](https://example.org/setup.exe)")
    assert not is_navigation_item("- [Install](install.md): how to set it up")
    assert not is_navigation_item("- [ ] a task to do")
    assert not is_navigation_item("- :math:`x^2`")
    assert not is_navigation_item("[Install](install.md)")  # not a list item: may be prose


def test_badges_are_lines_of_images_only() -> None:
    assert is_badge_line("[![CI](https://ci/x.svg)](https://ci) [![Docs](d.svg)](https://d)")
    assert is_badge_line("![logo](logo.png)")
    assert not is_badge_line("![diagram](d.png) The diagram shows the pipeline.")
    assert not is_badge_line("[![logo](logo.png) Footnote](https://footnote.example)")


def test_a_file_of_headings_and_markup_only_gives_no_sections(tmp_path: Path) -> None:
    text = "(top)=\n# Title\n\n```{contents}\n```\n\n## Part\n\n[x]: https://x.example\n"
    path = tmp_path / "empty.md"
    path.write_text(text)
    assert [s.text for s in _sections_or_none(path)] == []


def _sections_or_none(path: Path) -> list[Section]:
    """Sections, or none where the parser says the file has no text."""
    from retrieval.errors import ParseFailed

    try:
        return list(iter_sections(path))
    except ParseFailed as exc:
        assert exc.state == "no_text"
        return []
