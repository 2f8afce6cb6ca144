"""A model server's API key, kept in the system keyring (macOS Keychain,
Windows Credential Locker, the Secret Service on Linux) through the
``keyring`` library, never in the settings file: that is a plain JSON file
that backups, sync tools and support requests copy around.

On a machine without a keyring (a headless Linux box, a minimal desktop) the
key is not stored at all: :class:`KeyringUnavailable` says so in one
sentence, and the user gives the key again (or, on the command line, names
an environment variable that holds it: ``ask --api-key-env VAR``).
"""

from __future__ import annotations

import logging

from engine.errors import EngineError

log = logging.getLogger(__name__)

# The keyring entry: this service name, the server's base URL as the user name.
KEYRING_SERVICE = "Footnote model server"


class KeyringUnavailable(EngineError):
    """There is no system keyring to keep the API key in (or it refused)."""


def keyring_available() -> bool:
    """Whether a real keyring backend is there (not keyring's "fail" one)."""
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    return not isinstance(backend, fail.Keyring) and getattr(backend, "priority", 1) > 0


def save_api_key(base_url: str, key: str) -> None:
    """Store ``key`` for ``base_url``; an empty key removes it."""
    if not key:
        forget_api_key(base_url)
        return
    import keyring
    from keyring.errors import KeyringError

    if not keyring_available():
        raise KeyringUnavailable(_NO_KEYRING)
    try:
        keyring.set_password(KEYRING_SERVICE, base_url, key)
    except KeyringError as exc:
        raise KeyringUnavailable(
            "The system keyring refused to store the API key, so it is not saved; unlock the "
            "keyring and try again, or enter the key each time.",
            detail=f"{type(exc).__name__}: {exc}",
        ) from exc


def load_api_key(base_url: str) -> str | None:
    """The stored key for ``base_url``; None when there is none or no keyring."""
    import keyring
    from keyring.errors import KeyringError

    if not keyring_available():
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, base_url)
    except KeyringError as exc:
        log.warning("reading the API key from the keyring failed: %s", exc)
        return None


def forget_api_key(base_url: str) -> None:
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    if not keyring_available():
        return
    try:
        keyring.delete_password(KEYRING_SERVICE, base_url)
    except PasswordDeleteError:
        pass  # nothing was stored
    except KeyringError as exc:
        log.warning("removing the API key from the keyring failed: %s", exc)


_NO_KEYRING = (
    "This computer has no system keyring to keep the API key in, so it is not saved (and never "
    "written to the settings file); enter it each time, or on the command line name an "
    "environment variable that holds it with --api-key-env."
)
