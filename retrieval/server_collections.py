"""Collections that live on a Chroma server, as this machine knows them.

A row names the collection as the user sees it in Footnote, the server's
address, the collection's name there, and a path mapping: the server's
chunks carry the paths of the machine that indexed them (``/srv/share/…``),
and ``server prefix -> local prefix`` pairs turn them into paths this
machine can open (``/Volumes/share/…``). No text, vector or file list is
kept here: the server holds those, unless the user asks for an offline copy
(``offline_copy``; the copy itself is a hidden collection, see
``retrieval/offline_copy.py``, and the row records how fresh it is). A
collection name is unique across local and server collections (searches and
conversations refer to it by name).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.errors import CollectionNotFound, RetrievalError

PathMap = tuple[tuple[str, str], ...]  # (server prefix, local prefix), tried in order


@dataclass(frozen=True)
class ServerCollectionRef:
    id: int
    name: str  # in Footnote
    url: str  # the Chroma server
    remote_name: str  # the collection's name on the server
    path_map: PathMap
    created_ns: int
    # The user asked for an offline copy (kept here, searched when the server fails).
    offline_copy: bool = False
    # The server's change marker when the copy last compared itself with it.
    copy_marker: str | None = None
    # time.time_ns() when the copy last agreed with the server (None: no copy yet).
    copy_synced_ns: int | None = None
    # time.time_ns() when the copy last compared every id with the server's.
    copy_listed_ns: int | None = None

    def local_path(self, path: str) -> str:
        return map_path(path, self.path_map)


def map_path(path: str, path_map: PathMap) -> str:
    """``path`` with the first matching server prefix replaced by its local
    prefix (whole path components only: ``/srv/a`` does not match
    ``/srv/ab``); unchanged when none matches."""
    for server, local in path_map:
        base = server.rstrip("/\\")
        if path == base or path.startswith((base + "/", base + "\\")):
            rest = path[len(base) :].lstrip("/\\")
            joined = local.rstrip("/\\")
            separator = "\\" if "\\" in joined and "/" not in joined else "/"
            return joined + separator + rest.replace("/", separator) if rest else joined
    return path


def parse_path_map(pairs: Sequence[str]) -> PathMap:
    """``SERVER_PREFIX=LOCAL_PREFIX`` texts (as the CLI and the dialog take
    them) as a path map; raises :class:`RetrievalError` for a malformed one."""
    found = []
    for pair in pairs:
        server, sep, local = pair.partition("=")
        if not sep or not server.strip() or not local.strip():
            raise RetrievalError(
                f"“{pair}” is not a path mapping; write it as SERVER_PREFIX=LOCAL_PREFIX, "
                "for example /srv/share=/Volumes/share."
            )
        found.append((server.strip(), local.strip()))
    return tuple(found)


_COLUMNS = (
    "id, name, url, remote_name, path_map, created_ns, "
    "offline_copy, copy_marker, copy_synced_ns, copy_listed_ns"
)


def _row(
    row: tuple[int, str, str, str, str, int, int, str | None, int | None, int | None],
) -> ServerCollectionRef:
    cid, name, url, remote_name, path_map, created_ns, offline, marker, synced, listed = row
    pairs = tuple((str(a), str(b)) for a, b in json.loads(path_map))
    return ServerCollectionRef(
        cid, name, url, remote_name, pairs, created_ns, bool(offline), marker, synced, listed
    )


def all_server_collections(db: sqlite3.Connection) -> list[ServerCollectionRef]:
    return [_row(r) for r in db.execute(f"SELECT {_COLUMNS} FROM server_collections ORDER BY name")]


def find_server_collection(db: sqlite3.Connection, name: str) -> ServerCollectionRef | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM server_collections WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else _row(row)


def get_server_collection(db: sqlite3.Connection, name: str) -> ServerCollectionRef:
    found = find_server_collection(db, name)
    if found is None:
        raise CollectionNotFound(f"There is no server collection called “{name}”.")
    return found


def create_server_collection(
    db: sqlite3.Connection,
    name: str,
    url: str,
    remote_name: str,
    path_map: PathMap = (),
) -> ServerCollectionRef:
    from retrieval.collections import MAX_NAME_CHARS, find_collection

    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise RetrievalError(f"A collection needs a name of 1 to {MAX_NAME_CHARS} characters.")
    if find_collection(db, name) is not None or find_server_collection(db, name) is not None:
        raise RetrievalError(f"A collection called “{name}” already exists; choose another name.")
    db.execute(
        "INSERT INTO server_collections (name, url, remote_name, path_map, created_ns) "
        "VALUES (?, ?, ?, ?, ?)",
        (name, url, remote_name, json.dumps([list(p) for p in path_map]), time.time_ns()),
    )
    return get_server_collection(db, name)


def update_path_map(
    db: sqlite3.Connection, ref: ServerCollectionRef, path_map: PathMap
) -> ServerCollectionRef:
    db.execute(
        "UPDATE server_collections SET path_map = ? WHERE id = ?",
        (json.dumps([list(p) for p in path_map]), ref.id),
    )
    return get_server_collection(db, ref.name)


def set_offline_copy(
    db: sqlite3.Connection, ref: ServerCollectionRef, wanted: bool
) -> ServerCollectionRef:
    """Record the user's choice; turning it off forgets how fresh the copy was
    (the caller deletes the copy itself)."""
    if wanted:
        db.execute("UPDATE server_collections SET offline_copy = 1 WHERE id = ?", (ref.id,))
    else:
        db.execute(
            "UPDATE server_collections SET offline_copy = 0, copy_marker = NULL, "
            "copy_synced_ns = NULL, copy_listed_ns = NULL WHERE id = ?",
            (ref.id,),
        )
    return get_server_collection(db, ref.name)


def record_copy_sync(
    db: sqlite3.Connection,
    ref: ServerCollectionRef,
    marker: str | None,
    synced_ns: int,
    listed_ns: int | None,
) -> None:
    """The copy agreed with the server at ``synced_ns`` (having read
    ``marker``; compared every id at ``listed_ns``, when it did)."""
    db.execute(
        "UPDATE server_collections SET copy_marker = ?, copy_synced_ns = ?, "
        "copy_listed_ns = COALESCE(?, copy_listed_ns) WHERE id = ?",
        (marker, synced_ns, listed_ns, ref.id),
    )


def delete_server_collection(db: sqlite3.Connection, ref: ServerCollectionRef) -> None:
    """Forget it here (its offline copy goes with it, by the foreign key's
    cascade); the server's collection is untouched (it is the team's)."""
    db.execute("DELETE FROM server_collections WHERE id = ?", (ref.id,))
