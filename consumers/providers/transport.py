"""The HTTP part of the lean provider clients (OpenAI-compatible, Anthropic): one pooled
aiohttp session for every provider, a body encoded once with orjson, timeouts per call or
per read, server-sent events, and errors classified by status and headers as the SDKs do
(Retry-After included). What is each API's own (paths, headers, events) stays in its engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson

from aibroker.errors import BrokerError, InvalidRequest, ProviderUnavailable
from aibroker.routes import ProviderConfig
from consumers.providers.classify import classify_status
from schemas.envelopes import Target


class ProviderHttp:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def post(
        self,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str],
        seconds: float,
        *,
        stream: bool,
    ) -> aiohttp.client._RequestContextManager:
        """POST `body` as JSON; a stream may run long, so then each read is bounded, not the
        whole call."""
        timeout = (
            aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=seconds)
            if stream
            else aiohttp.ClientTimeout(total=seconds)
        )
        return self._http().post(url, data=orjson.dumps(body), headers=headers, timeout=timeout)

    def _http(self) -> aiohttp.ClientSession:
        """One session (one connection pool) for every provider, made on first use, inside
        the running loop; the pool's own concurrency bounds the connections."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": "aibroker"}
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def provider_config(providers: dict[str, ProviderConfig], target: Target) -> ProviderConfig:
    """The deployment `target` names, or InvalidRequest when this pool does not serve it."""
    config = providers.get(target.provider)
    if config is None:
        raise InvalidRequest(f"provider '{target.provider}' is not served by this pool")
    return config


async def json_answer(response: aiohttp.ClientResponse, target: Target) -> dict[str, Any]:
    """The answer's JSON object, or the broker error its status says."""
    raw = await response.read()
    raise_for_status(response, raw)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise ProviderUnavailable(f"provider '{target.provider}' sent a non-JSON answer")
    return data


async def server_sent_events(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The `data` of each server-sent event (its `data:` lines joined by newlines)."""
    lines: list[bytes] = []
    async for raw in content:
        line = raw.rstrip(b"\r\n")
        if not line:
            if lines:
                yield b"\n".join(lines)
                lines = []
        elif line.startswith(b"data:"):
            lines.append(line[6:] if line.startswith(b"data: ") else line[5:])
    if lines:
        yield b"\n".join(lines)


def event_json(data: bytes, target: Target) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProviderUnavailable(f"provider '{target.provider}' sent a non-JSON event") from exc


def raise_for_status(response: aiohttp.ClientResponse, raw: bytes) -> None:
    if response.status < 300:
        return
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    raise classify_status(response.status, response.headers, body)


@contextlib.contextmanager
def translated_errors(target: Target) -> Iterator[None]:
    """Transport failures → ProviderUnavailable (a status is classified where it is read)."""
    try:
        yield
    except BrokerError:
        raise
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        # ValueError: a line of the event stream longer than aiohttp's read limit.
        raise ProviderUnavailable(
            f"provider '{target.provider}' unreachable: {type(exc).__name__}"
        ) from exc
