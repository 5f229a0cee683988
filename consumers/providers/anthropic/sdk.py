"""Anthropic deployments through the official async `anthropic` SDK (a provider's
`client: sdk`; the lean path, the default, is `anthropic.lean`).

One client per deployment, built at start and reused, on the SDK's aiohttp transport with
its own retries off (retries go through the dispatcher's delay topics). Bodies go over the
wire as `anthropic.wire` builds them and come back as plain dicts, so the translation is the
one place that knows both formats.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
from anthropic import RequestOptions

from aibroker.errors import InvalidRequest, ProviderError, ProviderUnavailable
from aibroker.routes import ProviderConfig
from consumers.pool.engine import Completion, call_timeout
from consumers.providers.anthropic.stream import StreamTranslator
from consumers.providers.anthropic.wire import (
    ERROR_STATUS,
    answered_json,
    from_message,
    messages_call,
)
from consumers.providers.classify import classify_status
from schemas.envelopes import Request, Target
from schemas.openai import Usage


class AnthropicEngine:
    def __init__(self, providers: dict[str, ProviderConfig], *, drop_unsupported: bool) -> None:
        self._configs = providers
        self._drop = drop_unsupported
        self._clients = {
            name: anthropic.AsyncAnthropic(
                base_url=cfg.base_url,
                api_key=cfg.api_key,
                timeout=cfg.timeout_s,
                max_retries=0,
                http_client=anthropic.DefaultAioHttpClient(timeout=cfg.timeout_s),
            )
            for name, cfg in providers.items()
        }

    async def generate(self, request: Request, target: Target) -> Completion:
        client, params, options = self._call(request, target, stream=False)
        with _translated_errors(target):
            message = await client.post(
                "/v1/messages", body=params, options=options, cast_to=object
            )
        if not isinstance(message, dict):
            raise ProviderUnavailable(f"provider '{target.provider}' sent a non-JSON answer")
        response = from_message(message, json_mode=answered_json(params))
        return Completion(response, Usage.model_validate(response["usage"]))

    async def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        client, params, options = self._call(request, target, stream=True)
        include_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
        translator = StreamTranslator(json_mode=answered_json(params), include_usage=include_usage)
        with _translated_errors(target):
            events = await client.post(
                "/v1/messages",
                body=params,
                options=options,
                cast_to=object,
                stream=True,
                stream_cls=anthropic.AsyncStream[object],
            )
            async with events:  # closed even when the caller stops reading
                async for event in events:
                    if isinstance(event, dict):
                        for chunk in translator.feed(event):
                            yield chunk
        if not translator.finished:
            raise ProviderUnavailable(f"provider '{target.provider}' ended the stream early")

    async def check_health(self) -> bool:
        return True

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()

    def _call(
        self, request: Request, target: Target, *, stream: bool
    ) -> tuple[anthropic.AsyncAnthropic, dict[str, Any], RequestOptions]:
        client = self._clients.get(target.provider)
        if client is None:
            raise InvalidRequest(f"provider '{target.provider}' is not served by this pool")
        cfg = self._configs[target.provider]
        params = messages_call(
            request,
            target,
            default_max_tokens=cfg.default_max_tokens,
            drop_unsupported=self._drop,
            stream=stream,
        )
        options: RequestOptions = {"timeout": call_timeout(cfg.timeout_s, request.deadline)}
        return client, params, options


@contextlib.contextmanager
def _translated_errors(target: Target) -> Iterator[None]:
    """The SDK's exceptions → broker errors, by HTTP status (or, for an error event inside a
    stream that began with 200, by the error's type)."""
    try:
        yield
    except anthropic.APIStatusError as exc:
        raise _classify(exc) from exc
    except anthropic.APIConnectionError as exc:  # includes APITimeoutError
        raise ProviderUnavailable(
            f"provider '{target.provider}' unreachable: {type(exc).__name__}"
        ) from exc


def _classify(exc: anthropic.APIStatusError) -> ProviderError:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    status = exc.status_code
    if status < 400:
        status = ERROR_STATUS.get(str(error.get("type")), 500)
    return classify_status(status, exc.response.headers, body)
