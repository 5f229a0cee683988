"""Anthropic deployments over the lean HTTP path (`providers.transport`), the default: the Messages
API called directly, its answer and its events read as the official SDK reads them (an
`error` event fails the stream by its error type; a stream that stops before its
`message_delta` ended early). `python -m loadtest.bench_client` measures it against the SDK
(`client: sdk`, `anthropic.sdk`); the tests run both against the mock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from aibroker.errors import ProviderUnavailable
from aibroker.routes import ProviderConfig
from consumers.pool.engine import Completion, call_timeout
from consumers.providers.anthropic.stream import StreamTranslator
from consumers.providers.anthropic.wire import (
    ERROR_STATUS,
    VERSION,
    answered_json,
    from_message,
    messages_call,
)
from consumers.providers.classify import classify_status
from consumers.providers.transport import (
    ProviderHttp,
    event_json,
    json_answer,
    provider_config,
    raise_for_status,
    server_sent_events,
    translated_errors,
)
from schemas.envelopes import Request, Target
from schemas.openai import Usage


class AnthropicHttpEngine:
    def __init__(self, providers: dict[str, ProviderConfig], *, drop_unsupported: bool) -> None:
        self._configs = providers
        self._drop = drop_unsupported
        self._http = ProviderHttp()

    async def generate(self, request: Request, target: Target) -> Completion:
        params = self._params(request, target, stream=False)
        with translated_errors(target):
            async with self._post(request, target, params, stream=False) as response:
                message = await json_answer(response, target)
        answer = from_message(message, json_mode=answered_json(params))
        return Completion(answer, Usage.model_validate(answer["usage"]))

    async def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        params = self._params(request, target, stream=True)
        include_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
        translator = StreamTranslator(json_mode=answered_json(params), include_usage=include_usage)
        with translated_errors(target):
            async with self._post(request, target, params, stream=True) as response:
                if response.status >= 300:
                    raise_for_status(response, await response.read())
                async for data in server_sent_events(response.content):
                    event = event_json(data, target)
                    if not isinstance(event, dict):
                        continue
                    if event.get("type") == "error":
                        raise _stream_error(event)
                    for chunk in translator.feed(event):
                        yield chunk
        if not translator.finished:
            raise ProviderUnavailable(f"provider '{target.provider}' ended the stream early")

    def _params(self, request: Request, target: Target, *, stream: bool) -> dict[str, Any]:
        return messages_call(
            request,
            target,
            default_max_tokens=provider_config(self._configs, target).default_max_tokens,
            drop_unsupported=self._drop,
            stream=stream,
        )

    def _post(
        self, request: Request, target: Target, params: dict[str, Any], *, stream: bool
    ) -> aiohttp.client._RequestContextManager:
        config = provider_config(self._configs, target)
        headers = {
            "x-api-key": config.api_key,
            "anthropic-version": VERSION,
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        url = config.base_url.rstrip("/") + "/v1/messages"
        seconds = call_timeout(config.timeout_s, request.deadline)
        return self._http.post(url, params, headers, seconds, stream=stream)

    async def check_health(self) -> bool:
        return True

    async def aclose(self) -> None:
        await self._http.aclose()


def _stream_error(event: dict[str, Any]) -> Exception:
    """An `error` event inside a stream that began with 200: classified by its error type, as
    the SDK's status error would be."""
    error = event.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    return classify_status(ERROR_STATUS.get(str(kind), 500), {}, event)
