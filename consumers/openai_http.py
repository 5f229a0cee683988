"""External providers that speak the OpenAI API, over one pooled aiohttp session.

The lean path (a provider's `client: http`, the default): the body is encoded once with
orjson, the answer parsed once, and nothing else is built per call. The official SDK
(`client: sdk`, `openai_engine`) spends more CPU building each call than the call costs
(`python -m loadtest.bench_client` measures both). What the SDK's semantics give that matter
here are kept: errors classified by status and headers (Retry-After included), timeouts,
and server-sent events read the way the SDK reads them (`[DONE]` ends the stream, an
`error` object in an event fails it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson

from aibroker.errors import BrokerError, InvalidRequest, ProviderUnavailable
from aibroker.routes import ProviderConfig
from consumers.classify import classify_status
from consumers.engine import Completion, call_timeout
from schemas.envelopes import Kind, Request, Target
from schemas.openai import Usage

BROKER_ONLY = ("store", "task_type")
"""Fields of an embeddings request that are the broker's extensions, never sent upstream."""


def upstream_call(request: Request, target: Target, *, stream: bool) -> tuple[str, dict[str, Any]]:
    """The path and body sent upstream: `/embeddings` for an embeddings request (`dimensions`
    and `encoding_format` go as they came), else `/chat/completions`; the target's model."""
    if request.kind is Kind.EMBEDDINGS:
        body = {k: v for k, v in request.body.items() if k not in BROKER_ONLY}
        body["model"] = target.model
        return "/embeddings", body
    return "/chat/completions", {**request.body, "model": target.model, "stream": stream}


def usage_of(response: dict[str, Any]) -> Usage | None:
    usage = response.get("usage")
    return Usage.model_validate(usage) if isinstance(usage, dict) else None


class OpenAIHttpEngine:
    def __init__(self, providers: dict[str, ProviderConfig]) -> None:
        self._providers = providers
        self._session: aiohttp.ClientSession | None = None

    async def generate(self, request: Request, target: Target) -> Completion:
        path, body = upstream_call(request, target, stream=False)
        with _translated_errors(target):
            async with self._post(request, target, path, body, stream=False) as response:
                raw = await response.read()
                _raise_for_status(response, raw)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"provider '{target.provider}' sent a non-JSON answer")
        return Completion(data, usage_of(data))

    async def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        """The provider's `chat.completion.chunk`s as they arrive."""
        _, body = upstream_call(request, target, stream=True)
        with _translated_errors(target):
            async with self._post(request, target, "/chat/completions", body, stream=True) as r:
                if r.status >= 300:
                    _raise_for_status(r, await r.read())
                async for data in server_sent_events(r.content):
                    if data.startswith(b"[DONE]"):
                        return
                    chunk = _event_json(data, target)
                    if isinstance(chunk, dict):
                        yield chunk

    def _post(
        self, request: Request, target: Target, path: str, body: dict[str, Any], *, stream: bool
    ) -> aiohttp.client._RequestContextManager:
        config = self._providers.get(target.provider)
        if config is None:
            raise InvalidRequest(f"provider '{target.provider}' is not served by this pool")
        seconds = call_timeout(config.timeout_s, request.deadline)
        # A stream may run long: each read is bounded, not the whole call.
        timeout = (
            aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=seconds)
            if stream
            else aiohttp.ClientTimeout(total=seconds)
        )
        return self._http().post(
            config.base_url.rstrip("/") + path,
            data=orjson.dumps(body),
            headers={
                "Authorization": f"Bearer {config.api_key}",
                "Content-Type": "application/json",
                "Accept": "text/event-stream" if stream else "application/json",
            },
            timeout=timeout,
        )

    def _http(self) -> aiohttp.ClientSession:
        """One session (one connection pool) for every provider, made on first use, inside
        the running loop; the pool's own concurrency bounds the connections."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": "aibroker"}
            )
        return self._session

    async def check_health(self) -> bool:
        return True

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


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


def _event_json(data: bytes, target: Target) -> Any:
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProviderUnavailable(f"provider '{target.provider}' sent a non-JSON event") from exc
    if isinstance(event, dict) and event.get("error"):
        error = event["error"]
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str) or not message:
            message = "An error occurred during streaming"
        raise ProviderUnavailable(f"provider '{target.provider}' failed mid-stream: {message}")
    return event


def _raise_for_status(response: aiohttp.ClientResponse, raw: bytes) -> None:
    if response.status < 300:
        return
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    raise classify_status(response.status, response.headers, body)


@contextlib.contextmanager
def _translated_errors(target: Target) -> Iterator[None]:
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
