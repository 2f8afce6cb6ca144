"""The SSRF guard: which addresses the page fetcher may connect to."""

from __future__ import annotations

import ipaddress

import pytest

from retrieval.errors import FetchRefused
from retrieval.web.address_guard import address_problem, check_url


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


REFUSED = [
    "127.0.0.1",
    "127.5.6.7",
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata service
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.251",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.1.2.3",
    "::ffff:192.168.0.1",
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1 (stored inverted)
]


@pytest.mark.parametrize("address", REFUSED)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/admin",
        "http://172.16.5.4:8080/",
        "http://192.168.0.1/",
        "http://[::1]:8000/",
        "http://[fc00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",  # 127.0.0.1 in hex shorthand
        "http://localhost/",
    ],
)
def test_urls_to_local_addresses_are_refused_with_the_reason(url: str) -> None:
    with pytest.raises(FetchRefused) as caught:
        check_url(url)
    assert "Not opening" in caught.value.message
    assert "allow local fetch" in caught.value.message


@pytest.mark.parametrize(
    ("name", "addresses"),
    [
        ("intranet.example", ["10.1.2.3"]),
        ("router.example", ["192.168.1.1"]),
        ("corp.example", ["172.20.0.5"]),
        ("metadata.example", ["169.254.169.254"]),
        ("loop.example", ["127.0.0.1"]),
        ("v6loop.example", ["::1"]),
        ("ula.example", ["fd00::5"]),
        ("mapped.example", ["::ffff:127.0.0.1"]),
        # One private address among public ones is enough to refuse: the
        # connection could go to any of them.
        ("mixed.example", ["93.184.216.34", "10.0.0.7"]),
    ],
)
def test_dns_names_resolving_to_private_addresses_are_refused(
    name: str, addresses: list[str]
) -> None:
    resolve = resolver({name: addresses})
    with pytest.raises(FetchRefused) as caught:
        check_url(f"https://{name}/page", resolve=resolve)
    assert name in caught.value.message
    assert resolve.calls == [name]


def test_a_public_name_passes_and_pins_the_checked_address() -> None:
    target = check_url(
        "https://news.example:8443/a/b?q=1#frag",
        resolve=resolver({"news.example": ["93.184.216.34"]}),
    )
    assert (target.scheme, target.host, target.port) == ("https", "news.example", 8443)
    assert target.address == "93.184.216.34"
    assert target.path == "/a/b?q=1"  # the fragment never leaves the machine


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/x",
        "gopher://example.org/",
        "javascript:alert(1)",
        "data:text/html,hi",
    ],
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(FetchRefused, match="only http and https"):
        check_url(url)


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(FetchRefused, match="user name or password"):
        resolve = resolver({"example.org": ["1.1.1.1"]})
        check_url("http://admin:secret@example.org/", resolve=resolve)


def test_unresolvable_names_are_refused_not_raised_raw() -> None:
    with pytest.raises(FetchRefused, match="does not resolve"):
        check_url("http://nowhere.example/", resolve=resolver({}))


def test_allow_local_lets_loopback_and_private_through_but_not_unspecified_or_multicast() -> None:
    for address in ["127.0.0.1", "10.0.0.1", "192.168.1.1", "::1", "fc00::1", "::ffff:127.0.0.1"]:
        assert address_problem(ipaddress.ip_address(address), allow_local=True) is None
    for address in ["0.0.0.0", "::", "224.0.0.1", "ff02::1"]:
        assert address_problem(ipaddress.ip_address(address), allow_local=True) is not None
    target = check_url("http://127.0.0.1:8080/x", allow_local=True)
    assert target.address == "127.0.0.1"


@pytest.mark.parametrize(
    "url", ["http://[::1/", "http://exa mple.com/", "http://ex\x00ample.com/", "http://:80/"]
)
def test_malformed_urls_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(FetchRefused, match="Not opening"):
        check_url(url, resolve=resolver({}))


def test_request_paths_are_percent_encoded_once() -> None:
    target = check_url(
        "https://news.example/a b/c%20d?q=x y",
        resolve=resolver({"news.example": ["93.184.216.34"]}),
    )
    assert target.path == "/a%20b/c%20d?q=x%20y"
