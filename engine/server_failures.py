"""A model server's failures as one sentence each: what went wrong and what
to do (start the server, set the key, check the model name, wait), with
the HTTP status and the server's own words kept in ``detail``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import (
    ServerBusy,
    ServerError,
    ServerModelUnknown,
    ServerRefusedKey,
    ServerStreamBroken,
    ServerTimedOut,
    ServerUnreachable,
    ServerUnsuitable,
)

if TYPE_CHECKING:
    from engine.server_address import ServerAddress


def status_error(address: ServerAddress, status: int, text: str) -> ServerError:
    """The error for an HTTP status the server answered with."""
    url, model = address.base_url, address.model
    detail = f"HTTP {status}: {text[:2000]}"
    if status in (401, 403):
        wanted = "a different API key" if address.api_key else "an API key"
        return ServerRefusedKey(
            f"The server at {url} wants {wanted}: set it in Settings → Use a model server "
            "(or --api-key-env for the command line).",
            detail=detail,
            status=status,
        )
    if status == 404:
        return ServerModelUnknown(
            f"The server at {url} does not know the model “{model}” (or this request): "
            "check the model name, and that the address is its API's base URL.",
            detail=detail,
            status=status,
        )
    if status in (429, 503):
        return ServerBusy(
            f"The server at {url} is busy or limits how often it is asked (HTTP {status}); "
            "wait a moment and try again.",
            detail=detail,
            status=status,
        )
    return ServerUnsuitable(
        f"The server at {url} refused the request (HTTP {status}); its reply is in the details.",
        detail=detail,
        status=status,
    )


def transport_error(address: ServerAddress, exc: Exception, *, streaming: bool) -> ServerError:
    """The error for a request that got no (whole) answer."""
    import httpx

    url = address.base_url
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ServerUnreachable(
            f"Nothing answers at {url}: start the model server, or check the address in "
            "Settings → Use a model server.",
            detail=detail,
        )
    if isinstance(exc, httpx.TimeoutException):
        return ServerTimedOut(
            f"The server at {url} took too long to answer; it may be busy. Try again.",
            detail=detail,
        )
    if streaming:
        return ServerStreamBroken(
            f"The connection to the server at {url} broke during the answer; what it "
            "wrote is kept. Check the server, then try again.",
            detail=detail,
        )
    return ServerUnreachable(
        f"The connection to {url} failed: check the server and the address.", detail=detail
    )
