"""Which URLs the page fetcher may open (server-side request forgery guard).

Search results are untrusted input: a result, or a redirect from one, can
point at the user's router, a printer's admin page or a cloud metadata
service. Before every request (and every redirect hop) the host is resolved
and *every* address it resolves to must be public; the fetcher then connects
to the address checked here, so a DNS answer that changes between the check
and the connection (rebinding) cannot slip a private address in.

Refused: anything but http/https; URLs with user:password; loopback, private
(10/8, 172.16/12, 192.168/16), shared/CGNAT (100.64/10), link-local
(169.254/16, fe80::/10), multicast, reserved and unspecified (0.0.0.0, ::)
addresses, IPv6 unique-local (fc00::/7), and IPv6 forms that embed an IPv4
address (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64
64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32), judged by the IPv4 address
inside. ``allow_local=True`` (the "allow local fetch" setting, off by default)
lets exactly loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16,
fc00::/7) and CGNAT through, for tests and intranet users. Everything else
that is not a public address stays refused even then, on every redirect hop:
link-local (the cloud metadata service at 169.254.169.254 hands out
credentials; fe80::/10), "this network" 0.0.0.0/8, broadcast, multicast,
reserved (240/4), and the documentation and benchmark ranges: no intranet
page lives there, and a search result that points there is an attack.
``local_networks`` narrows the allowed ones to the given networks (an
intranet's own range; the tests' loopback server, so they can prove a
redirect from it to 10.0.0.1 is still refused without ever sending anything
there).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from retrieval.errors import FetchRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses it resolves to (as strings)
Resolver = Callable[[str, int], list[str]]

_PATH_SAFE = "/%:@!$&'()*+,;=-._~?"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPAT = ipaddress.ip_network("::/96")


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A URL that passed the guard, and the address to connect to."""

    url: str
    scheme: str  # "http" or "https"
    host: str  # for the Host header and TLS SNI / certificate check
    port: int
    address: str  # the checked IP address to connect to
    path: str  # path + query, as sent on the request line


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address (de-obfuscated by ipaddress)
    if address in _NAT64 or (address in _IPV4_COMPAT and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(  # noqa: PLR0911 - one return per rule reads as the rule list
    address: IPAddress,
    *,
    allow_local: bool = False,
    local_networks: Sequence[IPNetwork] | None = None,
) -> str | None:
    """Why the fetcher must not connect to ``address``, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "a scoped IPv6 address"
        inner = _embedded_ipv4(address)
        if inner is not None:
            problem = address_problem(inner, allow_local=allow_local, local_networks=local_networks)
            return f"{problem} (inside an IPv6 address)" if problem else None
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"  # never allowed: cloud metadata lives here
    local = _local_kind(address)
    if local:
        permitted = allow_local and (
            local_networks is None or any(address in network for network in local_networks)
        )
        return None if permitted else local
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


# What "allow local fetch" can open, by name: an explicit list, because
# ipaddress's ``is_private`` also covers 0/8, 240/4, broadcast and the
# documentation ranges, none of which is a place a user's intranet lives.
_LOCAL_RANGES: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    (
        "this computer (loopback)",
        (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
    ),
    (
        "a private network address",
        tuple(
            ipaddress.ip_network(n)
            for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
        ),
    ),
    ("a carrier-grade NAT address", (_CGNAT,)),
)


def _local_kind(address: IPAddress) -> str | None:
    for kind, networks in _LOCAL_RANGES:
        if any(address.version == n.version and address in n for n in networks):
            return kind
    return None


def check_url(
    url: str,
    *,
    allow_local: bool = False,
    local_networks: Sequence[IPNetwork] | None = None,
    resolve: Resolver = system_resolver,
) -> Target:
    """Resolve and check ``url``; raise :class:`FetchRefused` with the reason."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # "Invalid IPv6 URL" and the like
        raise FetchRefused(
            f"Not opening {url}: it is not a valid address.", detail=str(exc)
        ) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused(
            f"Not opening {url}: only http and https pages are fetched.",
            detail=f"scheme {scheme!r}",
        )
    if parts.username is not None or parts.password is not None:
        raise FetchRefused(f"Not opening {url}: it carries a user name or password.")
    if not host:
        raise FetchRefused(f"Not opening {url}: it has no host name.")
    if any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in host):
        raise FetchRefused(f"Not opening {url}: its host name is not valid.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRefused(f"Not opening {url}: its port is invalid.", detail=str(exc)) from exc
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise FetchRefused(
                f"Not opening {url}: the name {host} does not resolve.", detail=repr(exc)
            ) from exc
    if not addresses:
        raise FetchRefused(f"Not opening {url}: the name {host} does not resolve.")
    for address in addresses:
        problem = address_problem(address, allow_local=allow_local, local_networks=local_networks)
        if problem:
            local_only = not allow_local and address_problem(address, allow_local=True) is None
            hint = " (allow local fetch in Settings to permit it)" if local_only else ""
            raise FetchRefused(
                f"Not opening {url}: {host} is {problem}{hint}.",
                detail=f"{host} -> {', '.join(map(str, addresses))}",
            )
    # Spaces and other characters a request line cannot carry are
    # percent-encoded, as browsers do; existing escapes are kept.
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_PATH_SAFE)
    return Target(url, scheme, host, port, str(addresses[0]), path)
