"""Telemetry that tools outside the project recognise: gen_ai call spans (only where the
opt-in variable asks), messaging send spans, the standard OTEL_* variables, uvicorn's logs as
JSON and `aibroker_build_info` in a scrape."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import platform
import socket
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
import uvicorn
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from aibroker.devstack.embedded import free_port
from aibroker.errors import ProviderRateLimited
from aibroker.settings import IngressSettings, ProviderSettings, load_settings
from aibroker.telemetry import metrics, tracing
from aibroker.telemetry.genai import CallSpans, upstreams
from aibroker.telemetry.logs import setup_logging
from ingress.main import server_options
from schemas.envelopes import Kind, Request, Target
from schemas.openai import Usage
from tests.scrape import scrape, value

pytestmark = pytest.mark.unit

STANDARD = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SEMCONV_STABILITY_OPT_IN",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "AIBROKER_OTEL_ENDPOINT",
    "AIBROKER_OTEL_SEMCONV_OPT_IN",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment with none of the variables under test set."""
    for name in STANDARD:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def exported() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    """A tracer of its own (the global provider stays no-op) and the spans it finished."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def chat(body: dict[str, Any], kind: Kind = Kind.CHAT) -> Request:
    return Request(
        id="req_1", tenant="t", kind=kind, model="fast", body=body, created_at=0.0, attempt=2
    )


CHAT_BODY = {
    "model": "fast",
    "messages": [{"role": "user", "content": "hi"}],
    "temperature": 0.2,
    "max_completion_tokens": 64,
    "top_p": 0.9,
    "stop": "END",
    "seed": 7,
    "n": 2,
    "response_format": {"type": "json_object"},
}
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "finish_reason": "stop"}, {"index": 1, "finish_reason": "length"}],
}
USAGE = Usage.model_validate(
    {"prompt_tokens": 11, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}}
)
DEPLOYMENTS = {
    "openai": ProviderSettings(base_url="https://api.openai.com/v1", api_key="k"),
    "azure": ProviderSettings(base_url="https://eu.openai.azure.com/openai/v1", api_key="k"),
    "claude": ProviderSettings(base_url="https://api.anthropic.com", api_key="k", kind="anthropic"),
    "gemini": ProviderSettings(base_url="http://127.0.0.1:9000", api_key="k", kind="gemini"),
}


def one_call(
    tracer: Tracer,
    request: Request,
    target: Target,
    *,
    latest: bool,
    fail: ProviderRateLimited | None = None,
    answer: dict[str, Any] = ANSWER,
) -> None:
    """A call as the pool makes it: the span around the engine call, then its answer."""
    spans = CallSpans(latest=latest, upstreams=upstreams(DEPLOYMENTS), tracer=tracer)
    with (
        contextlib.suppress(ProviderRateLimited),
        spans.call(request, target, streamed=False) as span,
    ):
        if fail is not None:
            raise fail
        spans.answered(span, answer, USAGE)


def only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


def test_without_the_opt_in_the_call_span_is_the_one_it_always_was(
    exported: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    one_call(tracer, chat(CHAT_BODY), Target(provider="openai", model="gpt-4o"), latest=False)
    span = only(exporter)
    assert (span.name, span.kind) == ("call openai/gpt-4o", SpanKind.CLIENT)
    assert dict(span.attributes or {}) == {
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "aibroker.attempt": 2,
        "aibroker.streamed": False,
    }


def test_with_the_opt_in_a_chat_call_follows_the_gen_ai_conventions(
    exported: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    one_call(tracer, chat(CHAT_BODY), Target(provider="openai", model="gpt-4o"), latest=True)
    span = only(exporter)
    assert (span.name, span.kind) == ("chat gpt-4o", SpanKind.CLIENT)
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.seed": 7,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.choice.count": 2,
        "gen_ai.output.type": "json",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("stop", "length"),
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.cache_read.input_tokens": 4,
        "aibroker.attempt": 2,
        "aibroker.streamed": False,
    }
    assert "gen_ai.system" not in (span.attributes or {})  # the old attribute is not doubled


@pytest.mark.parametrize(
    ("provider", "kind", "operation", "provider_name"),
    [
        ("azure", Kind.CHAT, "chat", "azure.ai.openai"),
        ("claude", Kind.CHAT, "chat", "anthropic"),
        ("gemini", Kind.CHAT, "generate_content", "gcp.gemini"),
        ("openai", Kind.EMBEDDINGS, "embeddings", "openai"),
        ("embed", Kind.EMBEDDINGS, "embeddings", "sentence_transformers"),
        ("vllm", Kind.CHAT, "chat", "vllm"),
    ],
)
def test_operation_and_provider_names_are_the_conventions_well_known_values(
    exported: tuple[Tracer, InMemorySpanExporter],
    provider: str,
    kind: Kind,
    operation: str,
    provider_name: str,
) -> None:
    tracer, exporter = exported
    embeddings = kind is Kind.EMBEDDINGS
    body = {"input": ["a"], "encoding_format": "float", "dimensions": 256} if embeddings else {}
    answer = {"object": "list", "model": "m-1", "data": []} if embeddings else ANSWER
    target = Target(provider=provider, model="m-1")
    one_call(tracer, chat(body, kind), target, latest=True, answer=answer)
    span = only(exporter)
    attributes = span.attributes or {}
    assert span.name == f"{operation} m-1"
    assert attributes["gen_ai.operation.name"] == operation
    assert attributes["gen_ai.provider.name"] == provider_name
    assert attributes["gen_ai.usage.input_tokens"] == 11
    if embeddings:
        assert attributes["gen_ai.request.encoding_formats"] == ("float",)
        assert attributes["gen_ai.embeddings.dimension.count"] == 256
        assert "gen_ai.usage.output_tokens" not in attributes  # embeddings produce none
    else:
        assert attributes["gen_ai.usage.output_tokens"] == 5


def test_a_failed_call_names_its_error_type(
    exported: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    failure = ProviderRateLimited("slow down", retry_after=3)
    target = Target(provider="claude", model="claude-sonnet-4")
    one_call(tracer, chat(CHAT_BODY), target, latest=True, fail=failure)
    span = only(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "rate_limit_exceeded"
    assert "gen_ai.response.id" not in (span.attributes or {})


def test_a_send_span_is_a_producer_span_whose_context_travels_in_the_headers(
    exported: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    with tracer.start_as_current_span("process aib.requests.interactive") as parent:
        span = tracing.start_send("aib.results", b"req_1", tracer)
        headers = dict(tracing.inject([("traceparent", b"stale"), ("aib-t", b"1")], span) or [])
        tracing.sent(span, 3, 42, None)
    send = next(s for s in exporter.get_finished_spans() if s.name == "send aib.results")
    assert send.kind is SpanKind.PRODUCER
    assert send.parent is not None
    assert send.parent.span_id == parent.get_span_context().span_id
    assert dict(send.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "aib.results",
        "messaging.kafka.message.key": "req_1",
        "messaging.destination.partition.id": "3",
        "messaging.kafka.offset": 42,
    }
    context = send.get_span_context()
    assert context is not None
    _, trace_id, span_id, _ = headers["traceparent"].decode().split("-")
    # The consumer's span will be the send span's child, and the stale header is gone.
    assert (trace_id, span_id) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert headers["aib-t"] == b"1"


def test_without_tracing_a_send_records_nothing_and_passes_the_context_on() -> None:
    span = tracing.start_send("aib.results", b"req_1")  # the global, no-op tracer
    assert not span.is_recording()
    incoming = tracing.extract([("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")])
    with trace.use_span(trace.get_current_span(incoming)):
        headers = dict(tracing.inject(None, tracing.start_send("aib.results", None)) or [])
    assert headers["traceparent"] == b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"
    tracing.sent(span, 0, 0, None)  # nothing to end: no error either


def test_the_standard_variables_count_where_no_aibroker_one_is_set(
    env: pytest.MonkeyPatch,
) -> None:
    assert load_settings().otel.endpoint is None
    assert not load_settings().otel.gen_ai_latest
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    env.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
    otel = load_settings().otel
    assert otel.endpoint == "http://collector:4318/v1/traces"  # the base URL + the signal path
    assert otel.gen_ai_latest
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/custom")
    assert load_settings().otel.endpoint == "http://traces:4318/custom"  # the per-signal one
    env.setenv("AIBROKER_OTEL_ENDPOINT", "http://ours:4318/v1/traces")
    env.setenv("AIBROKER_OTEL_SEMCONV_OPT_IN", "http")
    env.setenv("AIBROKER_OTEL_SAMPLE_RATIO", "0.5")  # a group read from both sources at once
    otel = load_settings().otel
    assert (otel.endpoint, otel.gen_ai_latest, otel.sample_ratio) == (
        "http://ours:4318/v1/traces",
        False,
        0.5,
    )


def test_the_resource_takes_the_standard_service_name_and_attributes(
    env: pytest.MonkeyPatch,
) -> None:
    attributes = tracing.resource("aibroker-ingress").attributes
    assert (attributes["service.name"], attributes["service.namespace"]) == (
        "aibroker-ingress",
        "aibroker",
    )
    env.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod,service.namespace=ai")
    env.setenv("OTEL_SERVICE_NAME", "broker-eu")
    attributes = tracing.resource("aibroker-ingress").attributes
    assert attributes["service.name"] == "broker-eu"
    assert attributes["service.namespace"] == "ai"
    assert attributes["deployment.environment.name"] == "prod"


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Puts the root logger and uvicorn's back as they were (setup_logging changes them)."""
    root = logging.getLogger()
    kept = (root.handlers[:], root.level)
    servers = {n: logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    kept_servers = {n: (lg.handlers[:], lg.level, lg.propagate) for n, lg in servers.items()}
    yield
    root.handlers[:], root.level = kept[0], kept[1]
    for name, (handlers, level, propagate) in kept_servers.items():
        servers[name].handlers[:] = handlers
        servers[name].setLevel(level)
        servers[name].propagate = propagate


async def lifespan_only(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app that only starts and stops."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


def test_uvicorns_own_log_lines_are_json(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO")
    with socket.socket() as taken:  # ingress's port is taken: uvicorn itself logs the error
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(ingress=IngressSettings(host="127.0.0.1", port=port))
        server = uvicorn.Server(uvicorn.Config(lifespan_only, **server_options(settings)))
        with pytest.raises(SystemExit):
            asyncio.run(server.serve())
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    refused = [line for line in lines if line["logger"] == "uvicorn.error"]
    assert refused, lines
    assert refused[0]["level"] == "error"
    assert "address already in use" in refused[0]["msg"].lower()


async def test_build_info_is_in_a_scrape() -> None:
    metrics.build_info("aibroker-test")
    port = free_port()
    metrics.serve(port)
    samples = await scrape(f"http://127.0.0.1:{port}/metrics")
    labels = {"service": "aibroker-test", "python_version": platform.python_version()}
    assert value(samples, "aibroker_build_info", version=version("aibroker"), **labels) == 1
