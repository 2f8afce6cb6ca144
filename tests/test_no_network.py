"""The suite's own guard (tests/conftest.py): no test reaches the internet,
not by a connect and not by a DNS lookup, which leaks the name by itself."""

from __future__ import annotations

import socket

import pytest


@pytest.mark.parametrize(
    "name", ["example.com", "velmora.example", b"example.org", "10.0.0.1", "app.localhost"]
)
def test_name_lookups_beyond_this_machine_are_refused(name: str | bytes) -> None:
    with pytest.raises(OSError, match="may not look up names"):
        socket.getaddrinfo(name, 443)


def test_the_older_lookup_calls_are_refused_too() -> None:
    with pytest.raises(OSError, match="may not look up names"):
        socket.gethostbyname("example.com")
    with pytest.raises(OSError, match="may not look up names"):
        socket.gethostbyname_ex("example.com")


@pytest.mark.parametrize(
    "name", ["localhost", "127.0.0.1", "::1", b"localhost", "2130706433", "0x7f.1"]
)
def test_loopback_names_and_addresses_still_resolve(name: str | bytes) -> None:
    [*_, (_, _, _, _, address)] = socket.getaddrinfo(name, 8080, type=socket.SOCK_STREAM)
    assert address[0] in ("127.0.0.1", "::1")
    assert socket.getaddrinfo(None, 0, type=socket.SOCK_STREAM)  # a port to bind


def test_connects_beyond_loopback_are_refused() -> None:
    with socket.socket() as sock, pytest.raises(OSError, match="may not reach the network"):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed anyway
