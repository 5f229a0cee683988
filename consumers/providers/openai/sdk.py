"""External providers that speak the OpenAI API, through the official async `openai` SDK
(a provider's `client: sdk`; the default is the lean path of `openai.lean`).

One client per provider, built at start and reused (its connection pool with it), on the SDK's
aiohttp transport. The SDK's own retries are off: retries go through the dispatcher's delay
topics instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import orjson
from openai import RequestOptions

from aibroker.errors import InvalidRequest, ProviderUnavailable
from aibroker.routes import ProviderConfig
from consumers.pool.engine import Completion, call_timeout, tier_timeout
from consumers.providers.classify import classify_status
from consumers.providers.openai.lean import upstream_call, usage_of
from schemas.envelopes import Request, Target

# The body goes pre-encoded (orjson) rather than through the SDK's own JSON encoder.
_JSON: RequestOptions = {"headers": {"Content-Type": "application/json"}}


class OpenAICompatibleEngine:
    def __init__(self, providers: dict[str, ProviderConfig]) -> None:
        # aiohttp as the SDK's transport: httpx's pool scans every connection on every
        # request, which cost this pool half its CPU at 64+ requests in flight.
        self._clients = {
            name: openai.AsyncOpenAI(
                base_url=cfg.base_url,
                api_key=cfg.api_key,
                timeout=cfg.timeout_s,
                max_retries=0,
                http_client=openai.DefaultAioHttpClient(timeout=cfg.timeout_s),
            )
            for name, cfg in providers.items()
        }
        self._timeouts = {n: (cfg.timeout_s, cfg.flex_timeout_s) for n, cfg in providers.items()}

    async def generate(self, request: Request, target: Target) -> Completion:
        """`/chat/completions`, or `/embeddings` for an embeddings request (`dimensions` and
        `encoding_format` go as they came; the provider answers in OpenAI's own shape)."""
        client = self._client(target)
        path, body = upstream_call(request, target, stream=False)
        with _translated_errors(target):
            data = await client.post(
                path,
                content=orjson.dumps(body),
                options=self._options(request, target),
                cast_to=object,
            )
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"provider '{target.provider}' sent a non-JSON answer")
        return Completion(data, usage_of(data))

    async def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        """The provider's `chat.completion.chunk`s as they arrive (its own Responses API's
        typed events, for a Responses API request)."""
        client = self._client(target)
        path, body = upstream_call(request, target, stream=True)
        with _translated_errors(target):
            chunks = await client.post(
                path,
                content=orjson.dumps(body),
                options=self._options(request, target),
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
            async with chunks:
                async for chunk in chunks:
                    if isinstance(chunk, dict):
                        yield chunk

    def _options(self, request: Request, target: Target) -> RequestOptions:
        """JSON pre-encoded; the provider's timeout (its flex one for a flex call), cut short
        by the request's deadline."""
        timeout_s = tier_timeout(*self._timeouts[target.provider], request.body)
        timeout = call_timeout(timeout_s, request.deadline)
        return {**_JSON, "timeout": timeout}

    def _client(self, target: Target) -> openai.AsyncOpenAI:
        client = self._clients.get(target.provider)
        if client is None:
            raise InvalidRequest(f"provider '{target.provider}' is not served by this pool")
        return client

    async def check_health(self) -> bool:
        return True

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()


@contextlib.contextmanager
def _translated_errors(target: Target) -> Iterator[None]:
    """The SDK's exceptions → broker errors, by type and HTTP status."""
    try:
        yield
    except openai.APIStatusError as exc:
        raise classify_status(exc.status_code, exc.response.headers, exc.body) from exc
    except openai.APIConnectionError as exc:  # includes APITimeoutError
        raise ProviderUnavailable(
            f"provider '{target.provider}' unreachable: {type(exc).__name__}"
        ) from exc
    except openai.APIError as exc:  # an error event inside a stream
        raise ProviderUnavailable(
            f"provider '{target.provider}' failed mid-stream: {exc.message}"
        ) from exc
