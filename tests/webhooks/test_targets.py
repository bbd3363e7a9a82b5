"""The SSRF guard classifies addresses only: no test here connects anywhere or queries DNS."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from service.webhooks.targets import UnsafeTarget, check_target, is_public_address

# Names under the reserved .test TLD, answered here instead of by a DNS server.
FAKE_DNS = {
    "public.test": ["93.184.215.14", "2606:4700:4700::1111"],
    "split.test": ["93.184.215.14", "10.0.0.1"],
}

PRIVATE_TARGETS = [
    "http://127.0.0.1/",
    "http://localhost/",
    "http://169.254.169.254/",
    "http://10.0.0.1/",
    "http://[::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://100.64.0.1/",
]


@pytest.fixture(autouse=True)
def offline_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep lookups on this machine: the system's DNS server is an address tests must not reach.

    ``localhost`` still resolves through /etc/hosts, ``FAKE_DNS`` names get canned answers and
    any other name is resolved numerically only, which fails for real names without a query.
    """
    real_getaddrinfo = asyncio.BaseEventLoop.getaddrinfo

    async def getaddrinfo(
        loop: asyncio.BaseEventLoop, host: str, port: Any, *, flags: int = 0, **kwargs: Any
    ) -> Any:
        if host in FAKE_DNS:
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (address, 0),
                )
                for address in FAKE_DNS[host]
            ]
        if host != "localhost":
            flags |= socket.AI_NUMERICHOST
        return await real_getaddrinfo(loop, host, port, flags=flags, **kwargs)

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("url", [*PRIVATE_TARGETS, "ftp://example.org/"])
async def test_private_local_and_non_http_targets_are_refused_by_default(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        await check_target(url, allow_private=False)


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
async def test_private_targets_are_accepted_when_private_networks_are_allowed(url: str) -> None:
    await check_target(url, allow_private=True)


async def test_non_http_scheme_is_refused_even_when_private_networks_are_allowed() -> None:
    with pytest.raises(UnsafeTarget, match="scheme 'ftp'"):
        await check_target("ftp://10.0.0.1/", allow_private=True)


async def test_refusal_names_the_offending_address() -> None:
    with pytest.raises(UnsafeTarget, match=r"169\.254\.169\.254"):
        await check_target("http://169.254.169.254/latest/meta-data/", allow_private=False)


@pytest.mark.parametrize("url", ["http://93.184.215.14/", "https://[2606:4700:4700::1111]:8443/"])
async def test_public_literal_address_is_accepted(url: str) -> None:
    await check_target(url, allow_private=False)


async def test_name_resolving_only_to_public_addresses_is_accepted() -> None:
    await check_target("https://public.test/hooks", allow_private=False)


async def test_name_resolving_to_any_private_address_is_refused() -> None:
    with pytest.raises(UnsafeTarget, match=r"10\.0\.0\.1"):
        await check_target("https://split.test/hooks", allow_private=False)


async def test_decimal_encoded_loopback_is_refused() -> None:
    with pytest.raises(UnsafeTarget, match=r"127\.0\.0\.1"):
        await check_target("http://2130706433/", allow_private=False)


async def test_unresolvable_name_is_refused() -> None:
    with pytest.raises(UnsafeTarget, match=r"cannot resolve host 'nonexistent\.invalid'"):
        await check_target("http://nonexistent.invalid/", allow_private=False)


async def test_unresolvable_name_is_refused_even_when_private_networks_are_allowed() -> None:
    with pytest.raises(UnsafeTarget, match="cannot resolve"):
        await check_target("http://nonexistent.invalid/", allow_private=True)


async def test_url_without_host_is_refused() -> None:
    with pytest.raises(UnsafeTarget, match="no host"):
        await check_target("http:///hooks", allow_private=False)


@pytest.mark.parametrize(
    "address",
    [
        "0.0.0.0",  # noqa: S104 - classified, never bound
        "172.16.0.1",
        "192.168.1.1",
        "198.18.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "::",
        "fd00::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2002:a9fe:a9fe::",
        "64:ff9b::a9fe:a9fe",
        "::ffff:127.0.0.1",
    ],
)
def test_non_public_addresses_are_classified_as_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "2606:4700:4700::1111", "2002:5db8:d70e::", "64:ff9b::5db8:d70e"]
)
def test_public_addresses_including_ones_embedded_in_ipv6_are_classified_as_public(
    address: str,
) -> None:
    assert is_public_address(address)
