"""One request, one trace: ingress, dispatcher, pool and results sink spans, linked through the
Kafka headers, exported over OTLP/HTTP by the real processes to a collector run by the test.
The stack is configured by OpenTelemetry's own variables only (endpoint, headers, the gen_ai
opt-in), and its spans follow the gen_ai and messaging conventions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtest.otlp import Collector, Span
from loadtest.stack import Stack
from tests.e2e.conftest import ROUTES, running_stack
from tests.services import KafkaService, RedisService
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.close()


@pytest.fixture(scope="module")
def traced(
    kafka: KafkaService,
    redis_svc: RedisService,
    collector: Collector,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-token=tok%20en",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    logs: Path = tmp_path_factory.mktemp("traced")
    with running_stack(kafka, redis_svc, logs, routes_yaml=ROUTES, extra_env=env) as stack:
        yield stack


async def one_trace(stack: Stack, collector: Collector) -> list[Span]:
    """The spans of one chat request whose first target refuses the broker's key (one failed
    call, a fallback, then echo), once every hop's are in."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as client:
        answer = await client.post(
            "/v1/chat/completions",
            json={"model": "refused-key", "messages": [{"role": "user", "content": "trace me"}]},
        )
    assert answer.status_code == 200
    request_id = answer.headers["x-request-id"]

    def trace() -> list[Span]:
        first = next((s for s in collector.spans if s.request_id == request_id), None)
        return [s for s in collector.spans if first and s.trace_id == first.trace_id]

    async def complete() -> bool:
        """Every hop's spans are in: a span ends (and is exported) before the one around it,
        so wait until no exported span still misses its parent."""
        spans = trace()
        services = {s.service for s in spans if s.name.startswith("process")}
        ids = {s.span_id for s in spans}
        return (
            {"aibroker-dispatcher", "aibroker-consumer-external", "aibroker-results"} <= services
            and sum(s.name.startswith("chat ") or not s.parent_id for s in spans) == 3
            and all(not s.parent_id or s.parent_id in ids for s in spans)
        )

    await eventually(complete, what=f"every hop of {request_id} exported its span")
    return trace()


async def test_one_request_is_one_trace_across_every_hop(
    traced: Stack, collector: Collector
) -> None:
    spans = await one_trace(traced, collector)
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if not s.parent_id]
    assert [(r.service, r.name) for r in roots] == [
        ("aibroker-ingress", "POST /v1/chat/completions")
    ]
    for span in spans:  # every span hangs off the ingress's, hop by hop
        assert span is roots[0] or span.parent_id in by_id, span

    def parent_service(span: Span) -> str:
        return by_id[span.parent_id].service

    dispatched = [s for s in spans if s.service == "aibroker-dispatcher"]
    assert any(parent_service(s) == "aibroker-ingress" for s in dispatched)
    assert any("fallback" in s.events for s in dispatched)  # the outcome's span
    calls = sorted((s for s in spans if s.name.startswith("chat ")), key=lambda s: s.name)
    assert [(c.name, c.error) for c in calls] == [("chat echo", False), ("chat fail-401", True)]
    sink = [s for s in spans if s.service == "aibroker-results"]
    assert sink
    assert all(parent_service(s) == "aibroker-consumer-external" for s in sink)


async def test_spans_follow_the_gen_ai_and_messaging_conventions(
    traced: Stack, collector: Collector
) -> None:
    spans = await one_trace(traced, collector)
    by_id = {s.span_id: s for s in spans}
    calls = {s.name: s for s in spans if s.name.startswith("chat ")}
    echo, refused = calls["chat echo"], calls["chat fail-401"]
    assert echo.kind == refused.kind == 3  # CLIENT
    assert {k: v for k, v in echo.attributes.items() if k.startswith("gen_ai.")} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",  # the mock speaks OpenAI's API
        "gen_ai.request.model": "echo",
        "gen_ai.response.model": "echo",
        "gen_ai.response.id": echo.attributes["gen_ai.response.id"],
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 2,
        "gen_ai.usage.output_tokens": 3,
    }
    assert echo.attributes["gen_ai.response.id"].startswith("chatcmpl-mock")
    assert echo.attributes["server.address"] == "127.0.0.1"
    assert "error.type" not in echo.attributes
    assert refused.attributes["error.type"] == "provider_auth_failed"

    # Every Kafka hop is a producer span `send <topic>` and the consumer span that is its child.
    sends = [s for s in spans if s.kind == 4]  # PRODUCER
    assert sends
    for send in sends:
        topic = send.attributes["messaging.destination.name"]
        assert send.name == f"send {topic}"
        assert send.attributes["messaging.operation.type"] == "send"
        assert send.attributes["messaging.system"] == "kafka"
        assert isinstance(send.attributes["messaging.kafka.offset"], int)  # acknowledged
    for process in (s for s in spans if s.kind == 5):  # CONSUMER
        parent = by_id[process.parent_id]
        assert (parent.kind, parent.name) == (4, f"send {process.name.removeprefix('process ')}")
    assert {s.service for s in sends} >= {"aibroker-ingress", "aibroker-consumer-external"}

    # OTEL_EXPORTER_OTLP_HEADERS reached the collector with every export, decoded.
    assert collector.headers
    assert all(h.get("x-collector-token") == "tok en" for h in collector.headers)
