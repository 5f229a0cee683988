"""Fetching a URL a client gave us without letting it reach inside our network (SSRF).

The host is resolved once; every address must be public (or inside an allowlisted network);
the connection goes to an address that was checked, so a second DNS answer cannot point
elsewhere (no rebinding). Redirects are not followed; size and time are capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from aibroker.errors import InvalidRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchRefused(InvalidRequest):
    code = "url_refused"


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    timeout_s: float
    allow: tuple[Network, ...] = ()
    """Networks allowed besides public addresses (an internal image store, say)."""

    @classmethod
    def build(cls, max_bytes: int, timeout_s: float, allow: Sequence[str]) -> FetchLimits:
        return cls(max_bytes, timeout_s, networks(allow))


def networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n) for n in cidrs)


def host_and_port(url: str, param: str) -> tuple[str, int]:
    """The host and port of an http(s) URL, or FetchRefused naming `param`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"{param} must be an http or https URL", param=param)
    if parts.username or parts.password:
        raise FetchRefused(f"{param} must not carry credentials", param=param)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRefused(f"{param} has an invalid port", param=param) from exc
    return parts.hostname, port


async def check_receiver(
    url: str, *, allow_http: bool, allow: Sequence[Network], param: str
) -> None:
    """A URL we will call (a webhook): HTTPS (HTTP only where allowed), and every address
    its host resolves to public or allowlisted. Checked again at each call."""
    if not (url.startswith("https://") or (allow_http and url.startswith("http://"))):
        raise FetchRefused(f"{param} must be an https URL", param=param)
    host, port = host_and_port(url, param)
    await resolve_checked(host, port, allow, param)


def address_allowed(address: Address, allow: Sequence[Network]) -> bool:
    """Public unicast addresses, or any inside `allow`. Loopback, private, link-local, CGNAT,
    multicast, reserved and their IPv6 equivalents (also IPv4-mapped) are not public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allow):
        return True
    return address.is_global and not address.is_multicast


async def resolve_checked(
    host: str, port: int, allow: Sequence[Network], param: str
) -> list[ResolveResult]:
    try:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchRefused(f"{param}: cannot resolve host '{host}'", param=param) from exc
    results: list[ResolveResult] = []
    for family, _, proto, _, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if not address_allowed(address, allow):
            raise FetchRefused(
                f"{param}: host '{host}' resolves to a non-public address", param=param
            )
        results.append(
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=family,
                proto=proto,
                flags=socket.AI_NUMERICHOST,
            )
        )
    if not results:
        raise FetchRefused(f"{param}: cannot resolve host '{host}'", param=param)
    return results


class _Pinned(AbstractResolver):
    """Answers aiohttp with the addresses we checked, never a fresh lookup."""

    def __init__(self, results: list[ResolveResult]) -> None:
        self._results = results

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return self._results

    async def close(self) -> None:
        return None


@contextlib.asynccontextmanager
async def pinned_session(
    url: str, limits: FetchLimits, param: str
) -> AsyncIterator[aiohttp.ClientSession]:
    """A session whose only way out is the checked addresses of `url`'s host."""
    host, port = host_and_port(url, param)
    pinned = await resolve_checked(host, port, limits.allow, param)
    connector = aiohttp.TCPConnector(resolver=_Pinned(pinned), use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=limits.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield session


async def fetch(url: str, limits: FetchLimits, *, param: str = "url") -> bytes:
    """The body of a GET of `url`, within the limits; FetchRefused (400) otherwise."""
    try:
        async with (
            pinned_session(url, limits, param) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            if response.status != 200:
                raise FetchRefused(
                    f"{param}: the server answered {response.status} (redirects are not "
                    "followed; give the final URL)",
                    param=param,
                )
            return await _read_capped(response, limits, param)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise FetchRefused(f"{param}: fetch failed ({type(exc).__name__})", param=param) from exc


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: float | None


async def post(
    url: str, body: bytes, headers: dict[str, str], limits: FetchLimits, *, param: str = "url"
) -> Answer:
    """POST `body` to `url` through the guard: the status (redirects not followed) and its
    Retry-After; at most `max_bytes` of the answer are read. FetchRefused when the URL may
    not be reached; aiohttp's errors and TimeoutError when it cannot."""
    async with (
        pinned_session(url, limits, param) as session,
        session.post(url, data=body, headers=headers, allow_redirects=False) as response,
    ):
        with contextlib.suppress(FetchRefused):
            await _read_capped(response, limits, param)
        return Answer(response.status, _seconds(response.headers.get("retry-after")))


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from webhook receivers; the schedule applies


async def _read_capped(response: aiohttp.ClientResponse, limits: FetchLimits, param: str) -> bytes:
    if (response.content_length or 0) > limits.max_bytes:
        raise _too_large(param, limits)
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limits.max_bytes:
            raise _too_large(param, limits)
    return bytes(body)


def _too_large(param: str, limits: FetchLimits) -> FetchRefused:
    return FetchRefused(f"{param}: larger than {limits.max_bytes} bytes", param=param)
