"""Where a model server is: its base URL, the model's name there, its key.

Apart from ``engine.server_client`` so that the failures module, which
words its sentences with the address, does not import the client back."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from engine.errors import ServerUnreachable


@dataclass(frozen=True)
class ServerAddress:
    """Where answers are computed: an OpenAI-compatible API's base URL (with or
    without its ``/v1``), the model name, and an API key if the server wants one."""

    base_url: str
    model: str
    api_key: str | None = None

    def __post_init__(self) -> None:
        url = self.base_url.strip().rstrip("/")
        if url.endswith("/v1"):
            url = url[: -len("/v1")]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ServerUnreachable(
                f"“{self.base_url}” is not a server address: write it as "
                "http://host:port (for example http://127.0.0.1:8080)."
            )
        object.__setattr__(self, "base_url", url)

    @property
    def label(self) -> str:
        """For people: where answers are computed."""
        return f"{self.base_url} ({self.model})"
