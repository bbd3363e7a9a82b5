"""SSRF guard for webhook URLs.

Subscribers choose the URL, so without this check a tenant could make caseclock POST to the
cloud metadata service, the database or anything else on the internal network. The check runs
when a subscription is saved and again before each delivery, because DNS answers can change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT_SECONDS = 5.0
ALLOWED_SCHEMES = frozenset({"http", "https"})

# RFC 6598 carrier-grade NAT space: internal to the provider, yet not "private" to Python.
_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
# RFC 6052 NAT64 well-known prefix: on an IPv6-only network it reaches the embedded IPv4 host.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeTarget(ValueError):
    """The URL may not receive webhooks; ``detail`` says why, fit for a 422 or a delivery log."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 host an IPv6 address actually reaches (mapped, 6to4 or NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress | str) -> bool:
    """Whether ``ip`` is a globally routable unicast address, safe to deliver to.

    Checks every flag rather than ``is_global`` alone: Python's ``is_global`` lets multicast,
    IPv6 site-local and IPv4 embedded in IPv6 through.
    """
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
        if address.is_site_local:
            return False
    elif address in _SHARED_ADDRESS_SPACE:
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def _resolve(host: str) -> set[IPAddress]:
    """Every address ``host`` resolves to, so that one private answer among public ones counts."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise UnsafeTarget(f"resolving host {host!r} timed out") from exc
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(f"cannot resolve host {host!r}: {exc}") from exc
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    if not addresses:
        raise UnsafeTarget(f"host {host!r} resolves to no address")
    return addresses


async def check_target(url: str, *, allow_private: bool) -> None:
    """Raise ``UnsafeTarget`` unless ``url`` is http(s) and all its addresses are public.

    The URL is parsed with httpx, the delivery client's own parser, so the host checked is the
    host connected to. Names are resolved even when private networks are allowed: a URL that
    does not resolve cannot receive anything.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsafeTarget(f"invalid URL: {exc}") from exc
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise UnsafeTarget(f"URL scheme {parsed.scheme!r} is not allowed; use http or https")
    host = parsed.host
    if not host:
        raise UnsafeTarget("URL has no host")
    try:
        addresses: set[IPAddress] = {ipaddress.ip_address(host)}
    except ValueError:
        addresses = await _resolve(host)
    if allow_private:
        return
    refused = sorted(str(address) for address in addresses if not is_public_address(address))
    if refused:
        raise UnsafeTarget(
            f"host {host!r} resolves to non-public address {', '.join(refused)}; "
            "private, loopback, link-local and metadata addresses are refused"
        )
