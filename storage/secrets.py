"""Secrets in the system keyring (macOS Keychain, Windows Credential Locker,
the Secret Service on Linux) through the ``keyring`` library, never in a
file of ours: the settings file is plain JSON that backups, sync tools and
support requests copy around.

Shared by the model server's API key (``engine/server_key.py``) and the
Chroma servers' access tokens (``app/wiring/chroma_tokens.py``): engine and
retrieval never import each other, and a keyring is storage, below both.
Each caller says in its own words what was not kept; this module only says
why (:class:`SecretNotKept`).
"""

from __future__ import annotations

import logging
from typing import Literal

log = logging.getLogger(__name__)


class SecretNotKept(Exception):
    """The secret was not stored: no keyring on this computer, or it refused."""

    def __init__(self, reason: Literal["no_keyring", "refused"], detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def keyring_available() -> bool:
    """Whether a real keyring backend is there (not keyring's "fail" one)."""
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    return not isinstance(backend, fail.Keyring) and getattr(backend, "priority", 1) > 0


def save_secret(service: str, account: str, secret: str) -> None:
    """Store ``secret`` under (``service``, ``account``); an empty one removes it.
    Raises :class:`SecretNotKept`."""
    if not secret:
        forget_secret(service, account)
        return
    import keyring
    from keyring.errors import KeyringError

    if not keyring_available():
        raise SecretNotKept("no_keyring")
    try:
        keyring.set_password(service, account, secret)
    except KeyringError as exc:
        raise SecretNotKept("refused", f"{type(exc).__name__}: {exc}") from exc


def load_secret(service: str, account: str) -> str | None:
    """The stored secret; None when there is none or no keyring."""
    import keyring
    from keyring.errors import KeyringError

    if not keyring_available():
        return None
    try:
        return keyring.get_password(service, account)
    except KeyringError as exc:
        log.warning("reading %s from the keyring failed: %s", service, exc)
        return None


def forget_secret(service: str, account: str) -> None:
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    if not keyring_available():
        return
    try:
        keyring.delete_password(service, account)
    except PasswordDeleteError:
        pass  # nothing was stored
    except KeyringError as exc:
        log.warning("removing %s from the keyring failed: %s", service, exc)
