"""The Documents page shows a search index that is being rebuilt, damaged or
incomplete, and links that were not followed (#21 items 3 and 4): what the
library reports (``CollectionInfo.vectors``, ``VectorsRebuilding``) reaches
the collections table in words, with the whole sentence as a tooltip."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication

from app.pages.documents import CollectionActivity, DocumentsPage
from retrieval.documents import CollectionInfo, FileHealth
from retrieval.ingest_events import VectorsRebuilding
from retrieval.store_health import StoreHealth


def info(vectors: StoreHealth | None) -> CollectionInfo:
    return CollectionInfo(
        "Notes", (Path("/home/u/Notes"),), (), "minilm", 3, {"indexed": 3}, 740, vectors
    )


def state_cell(page: DocumentsPage) -> tuple[str, str]:
    item = page.collections.item(0, 3)
    assert item is not None
    return item.text(), item.toolTip()


def test_rebuilding_damaged_and_whole_indexes_read_differently(qapp: QApplication) -> None:
    page = DocumentsPage()
    try:
        rebuilding = VectorsRebuilding("Notes", "the vector store is missing", 300, 740, 90.0)
        page.show_collections(
            [info(None)], {"Notes": CollectionActivity("indexing", rebuilding)}, "Notes", []
        )
        assert state_cell(page)[0] == (
            "Rebuilding search index: 300 / 740 passages, about 2 min left"
        )

        damaged = StoreHealth("broken", 740, 0, "the vector store could not be read")
        page.show_collections([info(damaged)], {}, "Notes", [])
        text, tip = state_cell(page)
        assert text == "Search index damaged"
        assert tip.startswith("Search index damaged (the vector store could not be read)")
        assert "keywords only" in tip and "no file is read again" in tip

        lost = StoreHealth("incomplete", 740, 0, "the vector store is missing")
        page.show_collections([info(lost)], {}, "Notes", [])
        assert state_cell(page)[0] == "Search index incomplete"

        page.show_collections([info(StoreHealth("ok", 740, 740))], {}, "Notes", [])
        assert state_cell(page) == ("Up to date", "")
    finally:
        page.deleteLater()


def test_a_link_not_followed_is_listed_with_its_target(qapp: QApplication) -> None:
    page = DocumentsPage()
    try:
        link = FileHealth(
            "/home/u/Notes/passwd.txt",
            "link_outside",
            "link to /etc/passwd, outside this collection's folders",
            0,
        )
        page.show_collections([info(None)], {}, "Notes", [link])
        assert page.file_rows() == [
            (
                "passwd.txt",
                "Link outside",
                "link to /etc/passwd, outside this collection's folders",
            )
        ]
        assert state_cell(page)[0] == "Up to date"  # a skipped link is not a failure
    finally:
        page.deleteLater()
