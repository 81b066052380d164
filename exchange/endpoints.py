"""Where the axis may push: never to its own host, its network or the cloud metadata service.

A push endpoint is given by whoever registers an agency, and the axis then POSTs to it from
inside its own network: pointed at ``http://169.254.169.254/`` (cloud metadata), at
``127.0.0.1`` or at a private address, it would make the axis a proxy into places no caller
should reach (server-side request forgery). So unless ``delivery.allow_private_endpoints``
is true, only globally routable unicast addresses are allowed (``ipaddress``'s
``is_global``): loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16, fc00::/7),
link-local (169.254/16, fe80::/10), shared (100.64/10), unspecified (0.0.0.0, ::),
documentation, benchmarking, reserved and multicast addresses are refused, and IPv4
addresses written as IPv6 (::ffff:127.0.0.1) count as the IPv4 address they name.

Checked twice: when an agency is registered (an address written in the URL, or a name
such as ``localhost``), and at every push on the addresses the name resolves to then; the
connection goes to exactly the addresses that passed, so a name that resolves to a public
address when checked and a private one a moment later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def address_refusal(address: str) -> str | None:
    """Why the axis may not push to this IP address, or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is link-local
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_global and not ip.is_multicast:
        return None
    kind = next(
        (
            name
            for name, flag in (
                ("a loopback address", ip.is_loopback),
                ("a link-local address (cloud metadata lives there)", ip.is_link_local),
                ("the unspecified address", ip.is_unspecified),
                ("a multicast address", ip.is_multicast),
                ("a private address", ip.is_private),
            )
            if flag
        ),
        "not a globally routable address",
    )
    return f"{ip} is {kind}"


def endpoint_refusal(url: str) -> str | None:
    """At registration: an endpoint whose host is a refused address or a local name."""
    host = (yarl.URL(url).host or "").strip("[]").rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return f"endpoint host {host!r} is this machine"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None  # a name: its addresses are checked at every push
    refusal = address_refusal(host)
    return None if refusal is None else f"endpoint host {refusal}"


def literal_address_refusal(url: str) -> str | None:
    """At push time: an endpoint written with an IP address (never resolved, so checked here)."""
    host = (yarl.URL(url).host or "").strip("[]")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return address_refusal(host)


class PublicOnlyResolver(AbstractResolver):
    """Resolves names as usual and keeps only the addresses the axis may push to."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [result for result in found if address_refusal(result["host"]) is None]
        if not allowed:
            reasons = "; ".join(sorted({str(address_refusal(result["host"])) for result in found}))
            # (errno, text): aiohttp shows the text (strerror) in the error it raises for the push.
            raise OSError(
                errno.EHOSTUNREACH, f"{host} resolves only to addresses the axis does not push to: {reasons}"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()
