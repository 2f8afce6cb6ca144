"""Named collections: folders (and files) the user added, with exclude patterns.

A collection is stored in the documents database (see ``document_db``). Its
``excludes`` are the user's own gitignore-style patterns; the defaults
(``discovery.DEFAULT_EXCLUDES``: ``.git/``, ``node_modules/``, build outputs,
hidden folders) always apply on top and are not stored, so an update of the
defaults reaches existing collections. ``model_id`` records the embedder that
built the collection's vectors: a different embedder rebuilds it.

An offline copy of a server collection is a collection too (``copy_of``: the
server collection's id), so its passages live in the same tables and the same
search reads them; it has no folders, is never indexed from files, and is
left out of every listing and lookup by name here (``copy_for`` finds it).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import CollectionNotFound, RetrievalError

MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class Collection:
    id: int
    name: str
    roots: tuple[Path, ...]
    excludes: tuple[str, ...]
    created_ns: int
    model_id: str | None
    # Follow symbolic links whose target is outside ``roots`` (the user's choice).
    follow_links_outside: bool = False
    # The server collection this is the offline copy of (None: the user's folders).
    copy_of: int | None = None

    @property
    def vector_name(self) -> str:
        """The chroma collection for this collection and embedder (3–63 chars,
        alphanumeric ends, as chroma requires)."""
        import hashlib

        model = hashlib.sha1((self.model_id or "").encode(), usedforsecurity=False).hexdigest()
        return f"c{self.id}-{model[:12]}"


def _row(row: tuple[int, str, str, str, int, str | None, int, int | None]) -> Collection:
    cid, name, roots, excludes, created_ns, model_id, follow_links_outside, copy_of = row
    return Collection(
        id=cid,
        name=name,
        roots=tuple(Path(p) for p in json.loads(roots)),
        excludes=tuple(json.loads(excludes)),
        created_ns=created_ns,
        model_id=model_id,
        follow_links_outside=bool(follow_links_outside),
        copy_of=copy_of,
    )


_COLUMNS = "id, name, roots, excludes, created_ns, model_id, follow_links_outside, copy_of"
# The user's own collections (not the offline copies of server collections).
_OWN = "copy_of IS NULL"


def all_collections(db: sqlite3.Connection) -> list[Collection]:
    return [
        _row(r)
        for r in db.execute(f"SELECT {_COLUMNS} FROM collections WHERE {_OWN} ORDER BY name")
    ]


def all_collection_ids(db: sqlite3.Connection) -> set[int]:
    """Every collection's id, offline copies included (whose vectors are kept)."""
    return {int(r[0]) for r in db.execute("SELECT id FROM collections")}


def get_collection(db: sqlite3.Connection, name: str) -> Collection:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM collections WHERE name = ? AND {_OWN}", (name,)
    ).fetchone()
    if row is None:
        known = ", ".join(c.name for c in all_collections(db)) or "none yet"
        raise CollectionNotFound(f"There is no collection called “{name}” (collections: {known}).")
    return _row(row)


def find_collection(db: sqlite3.Connection, name: str) -> Collection | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM collections WHERE name = ? AND {_OWN}", (name,)
    ).fetchone()
    return None if row is None else _row(row)


def copy_for(db: sqlite3.Connection, server_collection_id: int) -> Collection | None:
    """The offline copy of that server collection, if one was made."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM collections WHERE copy_of = ?", (server_collection_id,)
    ).fetchone()
    return None if row is None else _row(row)


def create_copy(db: sqlite3.Connection, server_collection_id: int, model_id: str) -> Collection:
    """An empty offline copy of that server collection, its vectors ``model_id``'s."""
    # A name no one types (it starts with a control character): names are
    # UNIQUE across the table, and a user's collection must never meet it.
    name = f"\x1foffline copy of server collection {server_collection_id}"
    db.execute(
        "INSERT INTO collections (name, roots, excludes, created_ns, model_id, copy_of) "
        "VALUES (?, '[]', '[]', ?, ?, ?)",
        (name, time.time_ns(), model_id, server_collection_id),
    )
    found = copy_for(db, server_collection_id)
    assert found is not None
    return found


def create_collection(
    db: sqlite3.Connection,
    name: str,
    roots: Sequence[Path],
    excludes: Sequence[str],
    *,
    follow_links_outside: bool = False,
) -> Collection:
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise RetrievalError(f"A collection needs a name of 1 to {MAX_NAME_CHARS} characters.")
    taken_by_server = db.execute(
        "SELECT 1 FROM server_collections WHERE name = ?", (name,)
    ).fetchone()
    if find_collection(db, name) is not None or taken_by_server is not None:
        raise RetrievalError(f"A collection called “{name}” already exists; choose another name.")
    db.execute(
        "INSERT INTO collections (name, roots, excludes, created_ns, follow_links_outside) "
        "VALUES (?, ?, ?, ?, ?)",
        (
            name,
            _roots_json(roots),
            json.dumps(list(excludes)),
            time.time_ns(),
            int(follow_links_outside),
        ),
    )
    return get_collection(db, name)


def update_collection(
    db: sqlite3.Connection,
    collection: Collection,
    *,
    roots: Sequence[Path] | None = None,
    excludes: Sequence[str] | None = None,
    model_id: str | None = None,
    follow_links_outside: bool | None = None,
) -> Collection:
    follow = (
        collection.follow_links_outside if follow_links_outside is None else follow_links_outside
    )
    db.execute(
        "UPDATE collections SET roots = ?, excludes = ?, model_id = ?, follow_links_outside = ? "
        "WHERE id = ?",
        (
            _roots_json(collection.roots if roots is None else roots),
            json.dumps(list(collection.excludes if excludes is None else excludes)),
            collection.model_id if model_id is None else model_id,
            int(follow),
            collection.id,
        ),
    )
    return get_collection(db, collection.name)


def delete_collection(db: sqlite3.Connection, collection: Collection) -> None:
    """Removes the collection, its manifest rows and chunks (ON DELETE CASCADE)."""
    db.execute("DELETE FROM collections WHERE id = ?", (collection.id,))


def _roots_json(roots: Sequence[Path]) -> str:
    unique: list[str] = []
    for root in roots:
        text = str(Path(root).expanduser().absolute())
        if text not in unique:
            unique.append(text)
    return json.dumps(unique)
