"""The SSRF guard: which addresses a client-given URL may reach, and fetching within limits
from a real local HTTP server (allowlisted, as an internal image store would be)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from aibroker.netguard import (
    FetchLimits,
    FetchRefused,
    address_allowed,
    check_receiver,
    fetch,
    host_and_port,
)

pytestmark = pytest.mark.integration
LOCAL = ("127.0.0.0/8",)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # CGNAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:8.8.8.8", True),
    ],
)
def test_only_public_addresses_are_allowed(address: str, allowed: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address), ()) is allowed


def test_the_allowlist_opens_a_network() -> None:
    allow = (ipaddress.ip_network("10.0.0.0/8"),)
    assert address_allowed(ipaddress.ip_address("10.9.9.9"), allow)
    assert not address_allowed(ipaddress.ip_address("192.168.0.1"), allow)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://x/", "http://", "https://user:pw@example.com/a.png"]
)
def test_urls_other_than_plain_http_s_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused):
        host_and_port(url, "image_url")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def image(_: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG" + b"x" * 1000)

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    app = web.Application()
    app.add_routes([web.get("/a.png", image), web.get("/moved", moved)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_loopback_is_refused_unless_allowlisted(server: str) -> None:
    with pytest.raises(FetchRefused, match="non-public"):
        await fetch(f"{server}/a.png", FetchLimits.build(10_000, 5, ()))
    body = await fetch(f"{server}/a.png", FetchLimits.build(10_000, 5, LOCAL))
    assert body.startswith(b"\x89PNG")
    assert len(body) == 1004


async def test_redirects_are_not_followed(server: str) -> None:
    with pytest.raises(FetchRefused, match="302"):
        await fetch(f"{server}/moved", FetchLimits.build(10_000, 5, LOCAL))


async def test_bodies_over_the_limit_are_refused(server: str) -> None:
    with pytest.raises(FetchRefused, match="larger than 500 bytes"):
        await fetch(f"{server}/a.png", FetchLimits.build(500, 5, LOCAL))


async def test_hosts_that_do_not_resolve_are_refused() -> None:
    with pytest.raises(FetchRefused, match="cannot resolve"):
        await fetch("http://no-such-host.invalid/a.png", FetchLimits.build(500, 5, ()))


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",  # a name resolving to loopback
        "https://2130706433/hook",  # 127.0.0.1, decimal
        "https://0x7f000001/hook",  # 127.0.0.1, hex
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.1.2.3/hook",
        "https://100.64.0.1/hook",  # CGNAT
        "https://224.0.0.1/hook",  # multicast
        "http://93.184.215.14/hook",  # public, but plain HTTP
    ],
)
async def test_webhook_receivers_inside_the_network_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused):
        await check_receiver(url, allow_http=False, allow=(), param="webhook.url")


async def test_an_allowlisted_network_may_receive_webhooks() -> None:
    allow = (ipaddress.ip_network("127.0.0.0/8"),)
    await check_receiver("http://127.0.0.1:9/hook", allow_http=True, allow=allow, param="u")
