"""OpenTelemetry traces: one trace per request, from ingress through every Kafka hop to the
result.

The context travels in Kafka headers (W3C `traceparent`), never in the body: the producer
injects the current context into every record it sends (`aibroker.kafka.producer`), and the worker
handles each record inside a consumer span whose parent is the context the record carries
(`consuming`). So a request's trace reads ingress → dispatcher → pool → results sink, with a
retry or a fallback as one more dispatcher span and one more pool span.

Off by default: unless `AIBROKER_OTEL_ENDPOINT` names an OTLP/HTTP collector, the global
tracer is OpenTelemetry's no-op one and none of this costs more than a few microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from aiokafka.structs import ConsumerRecord
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind

from aibroker.settings import OtelSettings

TRACER = trace.get_tracer("aibroker")
"""A proxy: it follows whichever provider `setup` installs, even if imported before."""

PROPAGATED = frozenset({"traceparent", "tracestate", "baggage"})
"""Headers the W3C propagators write; replaced, never duplicated, when a record is sent on."""

Headers = Sequence[tuple[str, bytes]]


def setup(settings: OtelSettings, service: str) -> None:
    """Export this process's spans over OTLP/HTTP when an endpoint is set; else stay no-op."""
    if not settings.endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "aibroker"}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.endpoint)))
    trace.set_tracer_provider(provider)


def inject(headers: Headers | None) -> list[tuple[str, bytes]] | None:
    """`headers` with the current trace context in place of any the record carried."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return None if headers is None else list(headers)
    kept = [(name, value) for name, value in headers or () if name not in PROPAGATED]
    return kept + [(name, value.encode()) for name, value in carrier.items()]


def extract(headers: Headers | None) -> Context:
    """The trace context a record carries (an empty context if none)."""
    carrier = {name: value.decode("latin-1") for name, value in headers or () if name in PROPAGATED}
    return propagate.extract(carrier)


def trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def event(name: str, **attributes: str | int | float | bool) -> None:
    """Mark a decision (retry, fallback, route) on the current span."""
    trace.get_current_span().add_event(name, attributes)


@contextmanager
def consuming(worker: str, group: str, record: ConsumerRecord[bytes, bytes]) -> Iterator[Span]:
    """A consumer span around handling one record, child of the context the record carries."""
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "messaging.consumer.group.name": group,
        "aibroker.runtime.service.worker": worker,
    }
    if record.key:
        attributes["messaging.kafka.message.key"] = record.key.decode("utf-8", "replace")
    with TRACER.start_as_current_span(
        f"process {record.topic}",
        context=extract(record.headers),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ) as span:
        yield span
