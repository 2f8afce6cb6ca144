"""A Chroma server's HTTP API (``chroma run``, or any Chroma deployment),
spoken with httpx: the few calls a shared collection needs, each with a
timeout and a typed error in one sentence.

Why not chromadb's own ``HttpClient``: it builds its httpx client with
``timeout=None`` (a server that stops answering would hold a search, and the
chat turn waiting on it, forever), it turns an error page that is not
Chroma's own (a reverse proxy's 401 or 502) into a bare ``Exception`` with the
status code gone, and it shares one "system" per host and port across the
process. The API itself is small and versioned (``/api/v2``, the same one
chromadb's client calls); its JSON shapes are checked against a real
``chroma run`` in ``tests/retrieval/test_chroma_server.py``.

A collection's records are the chunks: id (content hash + locator, as in the
local store), embedding, document (the chunk's text: the server is where the
team's text lives) and metadata (path, locator, the file's size, mtime and
SHA-256, which make the server its own manifest: any machine can index
incrementally).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from retrieval.errors import (
    ChromaServerError,
    ServerCollectionMissing,
    ServerDenied,
    ServerUnreachable,
)

if TYPE_CHECKING:
    import httpx
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

API = "/api/v2"
TENANT = "default_tenant"
DATABASE = "default_database"
CONNECT_TIMEOUT_S = 5.0
# A query at 100k chunks answers in well under a second; an upsert of a
# batch of 4,000 vectors takes a few seconds on a busy server.
READ_TIMEOUT_S = 30.0
# Rows per write: chroma's own limit (``max_batch_size``) is several thousand.
WRITE_BATCH_ROWS = 1000

JsonMeta = Mapping[str, str | int | float | bool]


@dataclass(frozen=True)
class Records:
    """Rows of a get or a query, column by column (absent columns empty)."""

    ids: list[str]
    documents: list[str]
    metadatas: list[dict[str, Any]]
    embeddings: list[list[float]]
    distances: list[float]


def normalized_url(url: str) -> str:
    """``url`` checked and without a trailing slash (``host:8000`` gets
    ``http://``). Raises :class:`ChromaServerError` for anything that is
    not an http(s) address."""
    text = url.strip()
    if text and "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ChromaServerError(
            f"“{url}” is not a Chroma server address; write it like http://host:8000."
        )
    return text.rstrip("/")


class ChromaServer:
    """One server, one connection pool (thread-safe: searches send their
    requests from a few threads at once)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        import httpx

        self.url = normalized_url(url)
        headers = {"Content-Type": "application/json"}
        if token:
            # Chroma's token auth reads either header; a proxy reads Authorization.
            headers["Authorization"] = f"Bearer {token}"
            headers["X-Chroma-Token"] = token
        self._http = httpx.Client(
            base_url=self.url + API,
            headers=headers,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            # Never a proxy from the environment: the user named this server.
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChromaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ calls

    def heartbeat(self) -> None:
        self._call("GET", "/heartbeat", what="answer")

    def collection(self, name: str) -> ServerCollection:
        """The collection called ``name``; :class:`ServerCollectionMissing` if none."""
        got = self._call("GET", f"{_db()}/collections/{quote(name, safe='')}", what=name)
        return ServerCollection(self, name, str(got["id"]), dict(got.get("metadata") or {}))

    def create_collection(self, name: str, metadata: JsonMeta) -> ServerCollection:
        """The collection ``name``, made with ``metadata`` unless it exists
        (then its own metadata is returned, for the caller to check)."""
        got = self._call(
            "POST",
            f"{_db()}/collections",
            json={"name": name, "metadata": dict(metadata), "get_or_create": True},
            what=name,
        )
        return ServerCollection(self, name, str(got["id"]), dict(got.get("metadata") or {}))

    def delete_collection(self, name: str) -> None:
        self._call("DELETE", f"{_db()}/collections/{quote(name, safe='')}", what=name)

    def _call(self, method: str, path: str, *, what: str, json: Any = None) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, json=json)
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(
                f"The Chroma server at {self.url} did not answer in time; it may be "
                "overloaded or stuck. Try again, or check the server.",
                detail=repr(exc),
            ) from exc
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"Footnote cannot reach the Chroma server at {self.url} ({_reason(exc)}); "
                "check that it is running and that the address is right.",
                detail=repr(exc),
            ) from exc
        if response.status_code >= 400:
            raise self._refusal(response, what)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ChromaServerError(
                f"The server at {self.url} answered with something that is not Chroma's "
                "API; check the address (and its port).",
                detail=response.text[:300],
            ) from exc

    def _refusal(self, response: httpx.Response, what: str) -> ChromaServerError:
        status = response.status_code
        detail = f"HTTP {status}: {response.text[:300]}"
        if status in {401, 403}:
            return ServerDenied(
                f"The Chroma server at {self.url} refused access (HTTP {status}); "
                "check the access token the server expects.",
                detail=detail,
            )
        if status == 404 and _not_found(response):
            return ServerCollectionMissing(
                f"The Chroma server at {self.url} has no collection called “{what}”; "
                "check the name, or index documents into it first.",
                detail=detail,
            )
        if status == 404:
            return ChromaServerError(
                f"{self.url} does not offer Chroma's API (version 2); check the address, "
                "or update the server to Chroma 1.0 or newer.",
                detail=detail,
            )
        return ChromaServerError(
            f"The Chroma server at {self.url} failed (HTTP {status}: {_message(response)}).",
            detail=detail,
        )


class ServerCollection:
    """One collection on a server: the record calls, addressed by its id."""

    def __init__(
        self, server: ChromaServer, name: str, collection_id: str, metadata: dict[str, Any]
    ) -> None:
        self.server = server
        self.name = name
        self.metadata = metadata
        self._path = f"{_db()}/collections/{collection_id}"

    def _post(self, verb: str, body: Mapping[str, Any]) -> Any:
        return self.server._call("POST", f"{self._path}/{verb}", json=body, what=self.name)

    def count(self) -> int:
        return int(self.server._call("GET", f"{self._path}/count", what=self.name))

    def modify_metadata(self, metadata: JsonMeta) -> None:
        self.server._call("PUT", self._path, json={"new_metadata": dict(metadata)}, what=self.name)
        self.metadata = dict(metadata)

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: npt.NDArray[np.float32],
        documents: Sequence[str],
        metadatas: Sequence[JsonMeta],
    ) -> None:
        for start in range(0, len(ids), WRITE_BATCH_ROWS):
            stop = start + WRITE_BATCH_ROWS
            self._post(
                "upsert",
                {
                    "ids": list(ids[start:stop]),
                    "embeddings": embeddings[start:stop].astype(float).tolist(),
                    "documents": list(documents[start:stop]),
                    "metadatas": [dict(m) for m in metadatas[start:stop]],
                },
            )

    def update_metadatas(self, ids: Sequence[str], metadatas: Sequence[JsonMeta]) -> None:
        for start in range(0, len(ids), WRITE_BATCH_ROWS):
            stop = start + WRITE_BATCH_ROWS
            self._post(
                "update",
                {
                    "ids": list(ids[start:stop]),
                    "metadatas": [dict(m) for m in metadatas[start:stop]],
                },
            )

    def delete(self, *, ids: Sequence[str] = (), where: Mapping[str, Any] | None = None) -> None:
        if ids:
            for start in range(0, len(ids), WRITE_BATCH_ROWS):
                self._post("delete", {"ids": list(ids[start : start + WRITE_BATCH_ROWS])})
        if where is not None:
            self._post("delete", {"where": dict(where)})

    def get(
        self,
        *,
        ids: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        include: Sequence[str] = (),
        limit: int | None = None,
        offset: int | None = None,
    ) -> Records:
        body: dict[str, Any] = {"include": list(include)}
        if ids is not None:
            body["ids"] = list(ids)
        if where is not None:
            body["where"] = dict(where)
        if where_document is not None:
            body["where_document"] = dict(where_document)
        if limit is not None:
            body["limit"] = limit
        if offset is not None:
            body["offset"] = offset
        got = self._post("get", body)
        return Records(
            ids=list(got.get("ids") or []),
            documents=list(got.get("documents") or []),
            metadatas=[dict(m or {}) for m in got.get("metadatas") or []],
            embeddings=list(got.get("embeddings") or []),
            distances=[],
        )

    def query(
        self,
        vector: npt.NDArray[np.float32],
        n_results: int,
        *,
        include: Sequence[str] = ("distances",),
        where_document: Mapping[str, Any] | None = None,
        ids: Sequence[str] | None = None,
    ) -> Records:
        """The ``n_results`` nearest (among ``ids`` when given: then the
        server measures each of them, which is how a lexical candidate gets
        its cosine without its vector crossing the network)."""
        body: dict[str, Any] = {
            "query_embeddings": [vector.astype(float).tolist()],
            "n_results": n_results,
            "include": list(include),
        }
        if ids is not None:
            body["ids"] = list(ids)
        if where_document is not None:
            body["where_document"] = dict(where_document)
        got = self._post("query", body)

        def first(column: str) -> list[Any]:
            rows = got.get(column)
            return list(rows[0]) if rows else []

        return Records(
            ids=first("ids"),
            documents=first("documents"),
            metadatas=[dict(m or {}) for m in first("metadatas")],
            embeddings=first("embeddings"),
            distances=[float(d) for d in first("distances")],
        )


def _db() -> str:
    return f"/tenants/{TENANT}/databases/{DATABASE}"


def _not_found(response: httpx.Response) -> bool:
    """Chroma's own "not found" answer (its error name), whatever the path."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and str(body.get("error", "")).startswith("NotFound")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no reason given"
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"]).splitlines()[0][:200]
    return response.reason_phrase or "no reason given"


def _reason(exc: Exception) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "refused" in text:
            return "connection refused"
        if "name" in text or "resolve" in text or "getaddrinfo" in text:
            return "the host name is not known"
        return "no connection"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was dropped"
    return exc.__class__.__name__
