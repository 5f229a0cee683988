"""External providers that speak the OpenAI API, over one pooled aiohttp session.

The lean path (a provider's `client: http`, the default; its HTTP part is `providers.transport`):
the body is encoded once with orjson, the answer parsed once, and nothing else is built per
call. The official SDK
(`client: sdk`, `openai.sdk`) spends more CPU building each call than the call costs
(`python -m loadtest.bench_client` measures both). What the SDK's semantics give that matter
here are kept: errors classified by status and headers (Retry-After included), timeouts,
and server-sent events read the way the SDK reads them (`[DONE]` ends the stream, an
`error` object in an event fails it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from aibroker.errors import ProviderUnavailable
from aibroker.responses_wire import passthrough_body
from aibroker.routes import ProviderConfig
from consumers.pool.engine import Completion, call_timeout, tier_timeout
from consumers.providers.transport import (
    ProviderHttp,
    event_json,
    json_answer,
    provider_config,
    raise_for_status,
    server_sent_events,
    translated_errors,
)
from schemas.envelopes import Kind, Request, Target
from schemas.openai import Usage

BROKER_ONLY = ("store", "task_type")
"""Fields of an embeddings request that are the broker's extensions, never sent upstream."""


def upstream_call(request: Request, target: Target, *, stream: bool) -> tuple[str, dict[str, Any]]:
    """The path and body sent upstream: `/embeddings` for an embeddings request (`dimensions`
    and `encoding_format` go as they came), `/moderations` for a moderation, `/responses` for
    a Responses API request (only a provider with `responses_api` is sent one), else
    `/chat/completions`; the target's model."""
    if request.kind is Kind.EMBEDDINGS:
        body = {k: v for k, v in request.body.items() if k not in BROKER_ONLY}
        body["model"] = target.model
        return "/embeddings", body
    if request.kind is Kind.MODERATIONS:
        return "/moderations", {**request.body, "model": target.model}
    if request.kind is Kind.RESPONSES:  # a provider with `responses_api`: the body as it came
        return "/responses", passthrough_body(request.body, target.model, stream=stream)
    return "/chat/completions", {**request.body, "model": target.model, "stream": stream}


def usage_of(response: dict[str, Any]) -> Usage | None:
    usage = response.get("usage")
    return Usage.model_validate(usage) if isinstance(usage, dict) else None


class OpenAIHttpEngine:
    def __init__(self, providers: dict[str, ProviderConfig]) -> None:
        self._providers = providers
        self._http = ProviderHttp()

    async def generate(self, request: Request, target: Target) -> Completion:
        path, body = upstream_call(request, target, stream=False)
        with translated_errors(target):
            async with self._post(request, target, path, body, stream=False) as response:
                data = await json_answer(response, target)
        return Completion(data, usage_of(data))

    async def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        """The provider's `chat.completion.chunk`s as they arrive (its own Responses API's
        typed events, for a Responses API request)."""
        path, body = upstream_call(request, target, stream=True)
        with translated_errors(target):
            async with self._post(request, target, path, body, stream=True) as r:
                if r.status >= 300:
                    raise_for_status(r, await r.read())
                async for data in server_sent_events(r.content):
                    if data.startswith(b"[DONE]"):
                        return
                    chunk = _chunk(data, target)
                    if isinstance(chunk, dict):
                        yield chunk

    def _post(
        self, request: Request, target: Target, path: str, body: dict[str, Any], *, stream: bool
    ) -> aiohttp.client._RequestContextManager:
        config = provider_config(self._providers, target)
        headers = {
            "Authorization": f"Bearer {config.api_key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        url = config.base_url.rstrip("/") + path
        timeout_s = tier_timeout(config.timeout_s, config.flex_timeout_s, request.body)
        seconds = call_timeout(timeout_s, request.deadline)
        return self._http.post(url, body, headers, seconds, stream=stream)

    async def check_health(self) -> bool:
        return True

    async def aclose(self) -> None:
        await self._http.aclose()


def _chunk(data: bytes, target: Target) -> Any:
    """An event's chunk; an `error` object in it fails the stream, as the SDK does."""
    event = event_json(data, target)
    if isinstance(event, dict) and event.get("error"):
        error = event["error"]
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str) or not message:
            message = "An error occurred during streaming"
        raise ProviderUnavailable(f"provider '{target.provider}' failed mid-stream: {message}")
    return event
