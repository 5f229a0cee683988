"""Gemini deployments, through the official async `google-genai` SDK.

One client per deployment, built at start and reused, with the SDK's retries off (retries go
through the dispatcher's delay topics). Requests are built by `gemini.wire` in Gemini's REST
shape; answers are read from the SDK's typed responses as plain dicts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import aiohttp
import httpx
from google import genai
from google.genai import errors as genai_errors

from aibroker.errors import InvalidRequest, ProviderUnavailable
from aibroker.routes import ProviderConfig
from consumers.pool.engine import Completion, call_timeout
from consumers.providers.classify import classify_status
from consumers.providers.gemini.embed_wire import from_embeddings, to_embed_content
from consumers.providers.gemini.wire import StreamTranslator, from_response, to_generate_content
from schemas.envelopes import Kind, Request, Target
from schemas.openai import EmbeddingsRequest, Usage


class GeminiEngine:
    def __init__(self, providers: dict[str, ProviderConfig], *, drop_unsupported: bool) -> None:
        self._configs = providers
        self._drop = drop_unsupported
        self._clients = {
            name: genai.Client(
                api_key=cfg.api_key,
                http_options={"base_url": cfg.base_url, "timeout": int(cfg.timeout_s * 1000)},
            )
            for name, cfg in providers.items()
        }

    async def generate(self, request: Request, target: Target) -> Completion:
        if request.kind is Kind.EMBEDDINGS:
            return await self._embed(request, target)
        client, call = self._call(request, target)
        with _translated_errors(target):
            answer = await client.aio.models.generate_content(model=target.model, **call)
        response = from_response(answer.model_dump(mode="json", exclude_none=True), target.model)
        return Completion(response, Usage.model_validate(response["usage"]))

    async def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        client, call = self._call(request, target)
        include_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
        translator = StreamTranslator(target.model, include_usage)
        with _translated_errors(target):
            responses = await client.aio.models.generate_content_stream(model=target.model, **call)
            async for answer in responses:
                for chunk in translator.feed(answer.model_dump(mode="json", exclude_none=True)):
                    yield chunk
        if not translator.finished:
            raise ProviderUnavailable(f"provider '{target.provider}' ended the stream early")
        for chunk in translator.close():
            yield chunk

    async def _embed(self, request: Request, target: Target) -> Completion:
        """`embed_content` (the SDK sends `batchEmbedContents`), answered as OpenAI does."""
        client = self._client(target)
        body = EmbeddingsRequest.model_validate(request.body)
        call = to_embed_content(body)
        timeout_s = call_timeout(self._configs[target.provider].timeout_s, request.deadline)
        call["config"]["http_options"] = {"timeout": int(timeout_s * 1000)}
        with _translated_errors(target):
            answer = await client.aio.models.embed_content(model=target.model, **call)
        response = from_embeddings(
            answer.model_dump(mode="json", exclude_none=True),
            call["contents"],
            target.model,
            body.encoding_format,
        )
        return Completion(response, Usage.model_validate(response["usage"]))

    async def check_health(self) -> bool:
        return True

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aio.aclose()

    def _client(self, target: Target) -> genai.Client:
        client = self._clients.get(target.provider)
        if client is None:
            raise InvalidRequest(f"provider '{target.provider}' is not served by this pool")
        return client

    def _call(self, request: Request, target: Target) -> tuple[genai.Client, dict[str, Any]]:
        client = self._client(target)
        call = to_generate_content(request.body, drop_unsupported=self._drop)
        timeout_s = call_timeout(self._configs[target.provider].timeout_s, request.deadline)
        call["config"]["httpOptions"] = {"timeout": int(timeout_s * 1000)}
        return client, call


@contextlib.contextmanager
def _translated_errors(target: Target) -> Iterator[None]:
    """The SDK's exceptions → broker errors, by HTTP status; Gemini's wait comes in the
    error's `RetryInfo` detail (or a Retry-After header)."""
    try:
        yield
    except genai_errors.APIError as exc:
        body = exc.details if isinstance(exc.details, dict) else {}
        raise classify_status(exc.code, _wait_headers(exc, body), body) from exc
    except (aiohttp.ClientError, httpx.TransportError, TimeoutError) as exc:
        raise ProviderUnavailable(
            f"provider '{target.provider}' unreachable: {type(exc).__name__}"
        ) from exc


def _wait_headers(exc: genai_errors.APIError, body: dict[str, Any]) -> Mapping[str, str]:
    headers: dict[str, str] = {}
    raw = getattr(exc.response, "headers", None)
    if raw is not None:
        headers |= {str(k).lower(): str(v) for k, v in raw.items()}
    delay = retry_delay(body)
    if delay is not None:
        headers["retry-after"] = str(delay)
    return headers


def retry_delay(body: dict[str, Any]) -> float | None:
    """`google.rpc.RetryInfo.retryDelay` ("7s", "0.5s") of an error body, in seconds."""
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    for detail in (error or {}).get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = str(detail.get("retryDelay", ""))
            with contextlib.suppress(ValueError):
                return float(delay.removesuffix("s"))
    return None
