"""Where webhooks may post: a guard against server-side request forgery.

Staff choose webhook URLs, and the service posts to them from inside the network, so a
URL naming ``127.0.0.1``, ``169.254.169.254`` (cloud metadata), ``10.x`` or an internal
host name would let staff reach what only the service should. Every address a URL's
host resolves to must be public: loopback, private, link-local, multicast, reserved,
unspecified and other non-global addresses are refused, IPv4 and IPv6 alike, with IPv6
forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64)
judged by that IPv4 address. ``DLGRADE_WEBHOOK_ALLOW_PRIVATE`` allows every address,
``DLGRADE_WEBHOOK_ALLOWED_NETWORKS`` some networks (an LMS on the intranet, tests).

The check runs at registration (``web.api_staff``, a 422 saying why) and again before
every post (``tasks.webhooks``), since DNS answers change. The post then connects to the
addresses that were checked, not to a fresh lookup, so a name cannot resolve to a public
address for the check and to an internal one for the connection (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tasks.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(Exception):
    """The URL may not be posted to; the message is one sentence saying why."""


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressPolicy:
        networks = tuple(ipaddress.ip_network(text, strict=False)
                         for text in settings.webhook_networks_text())
        return cls(settings.webhook_allow_private, networks)

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be posted to (a noun phrase), or None when it may."""
        if self.allow_private or any(address in net for net in self.allowed_networks):
            return None
        return forbidden_kind(address)


def forbidden_kind(address: IPAddress) -> str | None:
    """``"a loopback address"`` and the like, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return forbidden_kind(embedded)
    checks = (("is_unspecified", "an unspecified address"), ("is_loopback", "a loopback address"),
              ("is_link_local", "a link-local address"), ("is_multicast", "a multicast address"),
              ("is_reserved", "a reserved address"), ("is_private", "a private address"))
    for attribute, kind in checks:
        if getattr(address, attribute):
            return kind
    return None if address.is_global else "not a public address"


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo client, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (for TCP); raises OSError when it does not."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


@dataclass(frozen=True)
class Target:
    """A checked URL: its host name (for Host and TLS), port and the addresses to use."""

    host: str
    port: int
    addresses: tuple[str, ...]


def check_url(url: str, policy: AddressPolicy, resolver: Resolver | None = None) -> Target:
    """The addresses ``url`` may be posted to; :class:`UnsafeURL` when it may not."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("The url has a malformed port.") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeURL("The url must be an http:// or https:// address with a host.")
    try:
        addresses = [_literal(host)] if _is_literal(host) else \
            (resolver or resolve)(host, port)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UnsafeURL(f"The url's host {host!r} could not be resolved ({reason}).") from None
    if not addresses:
        raise UnsafeURL(f"The url's host {host!r} has no address.")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
        kind = policy.refusal(address)
        if kind is not None:
            shown = host if _is_literal(host) else f"{host} resolves to {address}, which"
            raise UnsafeURL(f"Webhooks may only post to public addresses: {shown} is {kind}.")
    return Target(host, port, tuple(addresses))


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _literal(host: str) -> str:
    return str(ipaddress.ip_address(host.split("%", 1)[0]))


def pinned_connect(target: Target) -> Callable[..., socket.socket]:
    """A ``socket.create_connection`` replacement that ignores the host it is given and
    connects to ``target``'s checked addresses in turn (the port is kept)."""

    def connect(address: tuple[str, int], timeout: float | None = None,
                source_address: Any = None) -> socket.socket:
        last: OSError | None = None
        for checked in target.addresses:
            try:
                return socket.create_connection((checked, address[1]), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")

    return connect
