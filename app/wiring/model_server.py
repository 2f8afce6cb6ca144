"""Answers computed on a model server: connecting to the one the user chose,
and the privacy ledger entry written before each prompt goes there. No Qt:
shared by the engine thread (the window) and the command line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings
from app.wiring.grounding import ledger_path
from engine.errors import EngineError
from engine.passages import Passage
from engine.server_client import ServerAddress
from engine.server_key import load_api_key
from engine.server_model import ServerModel, ServerSend
from retrieval.web.ledger import Ledger

MAX_LEDGER_TITLES = 5  # sources named in one ledger entry


@dataclass(frozen=True)
class ServerChoice:
    """Where answers are computed when not here."""

    url: str
    model: str

    @property
    def label(self) -> str:
        return f"{self.url.rstrip('/')} ({self.model})"


def server_choice(settings: Settings) -> ServerChoice | None:
    """The server the settings turn on; None: answers are computed here."""
    if settings.use_model_server and settings.model_server_url and settings.model_server_model:
        return ServerChoice(settings.model_server_url, settings.model_server_model)
    return None


class ServerLedger:
    """Writes one ledger entry before each prompt goes to the server: the
    server, the model, and what the prompt held (the conversation, and the
    sources of this turn by name), never the prompt itself. ``sources`` is
    set by whoever runs the turn when its ``Sources`` event passes (on the
    engine thread, before the prompt is read)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.sources: tuple[Passage, ...] = ()

    def __call__(self, send: ServerSend) -> None:
        self.ledger.record("model", send.url, describe_send(send, self.sources))


def describe_send(send: ServerSend, sources: Sequence[Passage]) -> str:
    text = f"{send.model}: the conversation and the question ({send.prompt_tokens:,} tokens)"
    if not sources:
        return text
    names = [p.citation for p in sources[:MAX_LEDGER_TITLES]]
    more = len(sources) - len(names)
    listed = "; ".join(names) + (f"; and {more} more" if more > 0 else "")
    return f"{text}, with {len(sources)} source{'s' if len(sources) > 1 else ''}: {listed}"


def connect(
    choice: ServerChoice, data_dir: Path, *, api_key: str | None = None
) -> tuple[ServerModel, ServerLedger]:
    """Connect to ``choice`` (the key: given, else the keyring's). Raises the
    engine's typed errors (unreachable, key refused, model unknown)."""
    recorder = ServerLedger(Ledger(ledger_path(data_dir)))
    key = api_key if api_key is not None else load_api_key(key_name(choice.url))
    address = ServerAddress(choice.url, choice.model, key or None)
    return ServerModel.connect(address, record_send=recorder), recorder


def key_name(url: str) -> str:
    """Under what name a server's key is kept in the keyring: its base URL
    as written, without a trailing slash or ``/v1``."""
    url = url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class ApiKeyVariableMissing(EngineError):
    """``--api-key-env`` names a variable that is not set."""


def api_key_from_env(variable: str | None) -> str | None:
    """The key in ``variable`` (the command line's ``--api-key-env``): a key
    never goes on the command line itself, where ``ps`` and shell history see it."""
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ApiKeyVariableMissing(
            f"The environment variable {variable} (from --api-key-env) is not set or empty; "
            f"set it to the server's API key, e.g. {variable}=... python -m app ask …"
        )
    return value
