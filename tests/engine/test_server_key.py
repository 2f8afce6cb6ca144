"""The model server's API key lives in the system keyring, or nowhere."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from engine.server_key import (
    KEYRING_SERVICE,
    KeyringUnavailable,
    forget_api_key,
    keyring_available,
    load_api_key,
    save_api_key,
)

URL = "http://gpu-box:8000"


class MemoryKeyring(KeyringBackend):
    """Stands in for the OS keyring, which cannot exist on a headless test
    machine (no Keychain, no Secret Service)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("no such entry")


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


def test_a_key_goes_to_the_keyring_under_the_servers_address(
    memory_keyring: MemoryKeyring,
) -> None:
    save_api_key(URL, "sk-team")
    assert memory_keyring.entries == {(KEYRING_SERVICE, URL): "sk-team"}
    assert load_api_key(URL) == "sk-team"
    assert load_api_key("http://other:8000") is None
    save_api_key(URL, "")  # an empty key removes it
    assert load_api_key(URL) is None
    forget_api_key(URL)  # nothing stored: no error


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_the_key_is_not_kept_and_the_user_is_told() -> None:
    assert not keyring_available()
    with pytest.raises(KeyringUnavailable) as caught:
        save_api_key(URL, "sk-team")
    message = str(caught.value)
    assert message.startswith("This computer has no system keyring to keep the API key in")
    assert "never written to the settings file" in message and "--api-key-env" in message
    assert message.count(". ") == 0  # one sentence
    assert load_api_key(URL) is None
    forget_api_key(URL)
