"""A model server's API key, kept in the system keyring (macOS Keychain,
Windows Credential Locker, the Secret Service on Linux) through the
``keyring`` library, never in the settings file: that is a plain JSON file
that backups, sync tools and support requests copy around.

On a machine without a keyring (a headless Linux box, a minimal desktop) the
key is not stored at all: :class:`KeyringUnavailable` says so in one
sentence, and the user gives the key again (or, on the command line, names
an environment variable that holds it: ``ask --api-key-env VAR``). The
keyring calls themselves are ``storage/secrets.py``'s, shared with the
Chroma servers' access tokens.
"""

from __future__ import annotations

from engine.errors import EngineError
from storage import secrets

# The keyring entry: this service name, the server's base URL as the user name.
KEYRING_SERVICE = "Footnote model server"


class KeyringUnavailable(EngineError):
    """There is no system keyring to keep the API key in (or it refused)."""


def keyring_available() -> bool:
    """Whether a real keyring backend is there (not keyring's "fail" one)."""
    return secrets.keyring_available()


def save_api_key(base_url: str, key: str) -> None:
    """Store ``key`` for ``base_url``; an empty key removes it."""
    try:
        secrets.save_secret(KEYRING_SERVICE, base_url, key)
    except secrets.SecretNotKept as exc:
        if exc.reason == "no_keyring":
            raise KeyringUnavailable(_NO_KEYRING) from exc
        raise KeyringUnavailable(
            "The system keyring refused to store the API key, so it is not saved; unlock the "
            "keyring and try again, or enter the key each time.",
            detail=exc.detail,
        ) from exc


def load_api_key(base_url: str) -> str | None:
    """The stored key for ``base_url``; None when there is none or no keyring."""
    return secrets.load_secret(KEYRING_SERVICE, base_url)


def forget_api_key(base_url: str) -> None:
    secrets.forget_secret(KEYRING_SERVICE, base_url)


_NO_KEYRING = (
    "This computer has no system keyring to keep the API key in, so it is not saved (and never "
    "written to the settings file); enter it each time, or on the command line name an "
    "environment variable that holds it with --api-key-env."
)
