"""Spans of provider and model calls, after OpenTelemetry's gen_ai semantic conventions.

Those conventions are of Development status, and they ask an instrumentation that already
emitted spans to keep them by default and to emit the latest conventions only where
`OTEL_SEMCONV_STABILITY_OPT_IN` lists `gen_ai_latest_experimental` (or, here,
`AIBROKER_OTEL_SEMCONV_OPT_IN`). So a pool's call span is either the one it always was,
`call <provider>/<model>`, or `{gen_ai.operation.name} {gen_ai.request.model}` (`chat gpt-4o`)
with the request's parameters, the response's model, id, finish reasons and token usage,
and `error.type` when the call failed. Never a prompt or an answer: the conventions make
those opt-in too, and our logs never carry them either.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import Span, SpanKind, Tracer

from aibroker.errors import BrokerError
from aibroker.settings import ProviderSettings
from aibroker.telemetry.tracing import TRACER
from schemas.envelopes import Kind, Request, Target
from schemas.openai import Usage

PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini"}
"""`gen_ai.provider.name` by the API a deployment speaks (the conventions' well-known values:
an OpenAI-compatible server is `openai`, as the OpenAI client sees it; `server.address` tells
which one it is)."""
LOCAL_ENGINES = {"vllm": "vllm", "embed": "sentence_transformers", "ocr": "pp_ocr"}
"""`gen_ai.provider.name` of the local engines (no well-known value exists for them)."""
OPERATIONS = {
    Kind.CHAT: "chat",
    Kind.EMBEDDINGS: "embeddings",
    Kind.OCR: "ocr",
    Kind.MODERATIONS: "moderation",
}
"""`gen_ai.operation.name` by request kind (OCR and moderation have no well-known value)."""

CHAT_PARAMETERS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
}
"""Numeric request parameters copied from an OpenAI chat body, where the client set them."""


@dataclass(frozen=True)
class Upstream:
    """What a call span says of the deployment a target names."""

    provider_name: str
    address: str | None = None
    port: int | None = None

    @classmethod
    def of(cls, provider: ProviderSettings) -> Upstream:
        parts = urlsplit(provider.base_url)
        name = PROVIDER_NAMES.get(provider.kind, provider.kind)
        if name == "openai" and (parts.hostname or "").endswith(".openai.azure.com"):
            name = "azure.ai.openai"
        default_port = 443 if parts.scheme == "https" else 80
        return cls(name, parts.hostname, parts.port or default_port)


def upstreams(providers: Mapping[str, ProviderSettings]) -> dict[str, Upstream]:
    """The upstream of each deployment name a pool serves (`RouteTable.providers`)."""
    return {name: Upstream.of(provider) for name, provider in providers.items()}


class CallSpans:
    """Makes the client span around each engine call, in the conventions asked for."""

    def __init__(
        self,
        *,
        latest: bool = False,
        upstreams: Mapping[str, Upstream] | None = None,
        tracer: Tracer = TRACER,
    ) -> None:
        self.latest = latest
        """The latest gen_ai conventions (`OtelSettings.gen_ai_latest`), else the older span."""
        self._upstreams = dict(upstreams or {})
        self._tracer = tracer

    @contextmanager
    def call(self, request: Request, target: Target, *, streamed: bool) -> Iterator[Span]:
        """The current span for the length of the call; an error leaving it marks the span
        failed (status, exception event and, in the latest conventions, `error.type`)."""
        ours = {"aibroker.attempt": request.attempt, "aibroker.streamed": streamed}
        if not self.latest:
            with self._tracer.start_as_current_span(
                f"call {target.provider}/{target.model}",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.system": target.provider,
                    "gen_ai.request.model": target.model,
                    **ours,
                },
            ) as span:
                yield span
            return
        attributes = self.request_attributes(request, target, streamed=streamed)
        with self._tracer.start_as_current_span(
            f"{attributes['gen_ai.operation.name']} {target.model}",
            kind=SpanKind.CLIENT,
            attributes={**attributes, **ours},
        ) as span:
            try:
                yield span
            except Exception as exc:  # a cancel is no failure: the SDK leaves those unmarked too
                span.set_attribute("error.type", error_type(exc))
                raise

    def answered(self, span: Span, response: Mapping[str, Any], usage: Usage | None) -> None:
        """Put what the response says on the call's span (latest conventions only)."""
        if self.latest and span.is_recording():
            span.set_attributes(response_attributes(response, usage))

    def request_attributes(
        self, request: Request, target: Target, *, streamed: bool
    ) -> dict[str, Any]:
        """The span's attributes known before the call: operation, provider, server, model
        and the parameters the client set."""
        upstream = self._upstreams.get(target.provider) or Upstream(
            LOCAL_ENGINES.get(target.provider, target.provider)
        )
        operation = OPERATIONS.get(request.kind, str(request.kind))
        if operation == "chat" and upstream.provider_name == "gcp.gemini":
            operation = "generate_content"  # what the Gemini API calls it
        found: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": upstream.provider_name,
            "gen_ai.request.model": target.model,
        }
        if upstream.address:
            found["server.address"] = upstream.address
            found["server.port"] = upstream.port
        body = request.body
        if request.kind is Kind.CHAT:
            found |= chat_parameters(body)
            if streamed:
                found["gen_ai.request.stream"] = True
        elif request.kind is Kind.EMBEDDINGS:
            if isinstance(encoding := body.get("encoding_format"), str):
                found["gen_ai.request.encoding_formats"] = [encoding]
            if _is_number(dimensions := body.get("dimensions")):
                found["gen_ai.embeddings.dimension.count"] = dimensions
        return found


def chat_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """The conventions' request attributes of an OpenAI chat body."""
    found = {key: body[name] for name, key in CHAT_PARAMETERS.items() if _is_number(body.get(name))}
    stop = body.get("stop")
    if isinstance(stop, str):
        found["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        found["gen_ai.request.stop_sequences"] = stop
    if _is_number(n := body.get("n")) and n != 1:
        found["gen_ai.request.choice.count"] = n
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and isinstance(kind := response_format.get("type"), str):
        found["gen_ai.output.type"] = "text" if kind == "text" else "json"
    return found


def response_attributes(response: Mapping[str, Any], usage: Usage | None) -> dict[str, Any]:
    """The conventions' response attributes of an OpenAI response body and its usage."""
    found: dict[str, Any] = {}
    if isinstance(model := response.get("model"), str):
        found["gen_ai.response.model"] = model
    if isinstance(response_id := response.get("id"), str):
        found["gen_ai.response.id"] = response_id
    choices = response.get("choices")
    if isinstance(choices, list):
        reasons = [c.get("finish_reason") for c in choices if isinstance(c, dict)]
        if reasons and all(isinstance(r, str) for r in reasons):
            found["gen_ai.response.finish_reasons"] = reasons
    if usage is not None:
        found["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        if response.get("object") != "list":  # an embeddings answer has no output tokens
            found["gen_ai.usage.output_tokens"] = usage.completion_tokens
        details = getattr(usage, "prompt_tokens_details", None)
        if isinstance(details, dict):
            if cached := details.get("cached_tokens"):
                found["gen_ai.usage.cache_read.input_tokens"] = int(cached)
            if written := details.get("cache_write_tokens"):
                found["gen_ai.usage.cache_creation.input_tokens"] = int(written)
    return found


def error_type(exc: BaseException) -> str:
    """A low-cardinality name of what failed: the broker's error code (`rate_limit_exceeded`,
    `provider_unavailable`, a provider's own 4xx code), else the exception's class name."""
    if isinstance(exc, BrokerError):
        return exc.error_code or exc.type
    return type(exc).__qualname__


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
