"""OpenTelemetry traces: one trace per request, from ingress through every Kafka hop to the
result.

The context travels in Kafka headers (W3C `traceparent`), never in the body: the producer
injects the context of each record's send span into it (`aibroker.kafka.producer`), and the worker
handles each record inside a consumer span whose parent is the context the record carries
(`consuming`). So a request's trace reads ingress → dispatcher → pool → results sink, with a
retry or a fallback as one more dispatcher span and one more pool span. Span names and
attributes follow OpenTelemetry's messaging conventions: `send <topic>` (PRODUCER, from the
send to the broker's acknowledgement) and `process <topic>` (CONSUMER).

Off by default: unless `AIBROKER_OTEL_ENDPOINT` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) names an
OTLP/HTTP collector, the global tracer is OpenTelemetry's no-op one and none of this costs
more than a few microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aiokafka.structs import ConsumerRecord
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from aibroker.settings import OtelSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

TRACER = trace.get_tracer("aibroker")
"""A proxy: it follows whichever provider `setup` installs, even if imported before."""

PROPAGATED = frozenset({"traceparent", "tracestate", "baggage"})
"""Headers the W3C propagators write; replaced, never duplicated, when a record is sent on."""

Headers = Sequence[tuple[str, bytes]]


def setup(settings: OtelSettings, service: str) -> None:
    """Export this process's spans over OTLP/HTTP when an endpoint is set; else stay no-op.
    The exporter reads `OTEL_EXPORTER_OTLP_HEADERS` (and its timeout, compression and
    certificate variables) itself."""
    if not settings.endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=resource(service), sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.endpoint)))
    trace.set_tracer_provider(provider)


def resource(service: str) -> Resource:
    """This process's resource: what `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` say
    (the SDK reads them), over our defaults (`service.name` = `service`, namespace
    `aibroker`)."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    detected = Resource.create()
    named = {
        key: value
        for key, value in detected.attributes.items()
        if not (key == SERVICE_NAME and str(value).startswith("unknown_service"))
    }
    defaults = {SERVICE_NAME: service, "service.namespace": "aibroker"}
    return Resource({**defaults, **named}, detected.schema_url)


def inject(headers: Headers | None, span: Span | None = None) -> list[tuple[str, bytes]] | None:
    """`headers` with the trace context of `span` (a recording one; else the current context)
    in place of any the record carried."""
    carrier: dict[str, str] = {}
    context = trace.set_span_in_context(span) if span is not None and span.is_recording() else None
    propagate.inject(carrier, context)
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
        "messaging.operation.name": "process",
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


def start_send(topic: str, key: bytes | None, tracer: Tracer = TRACER) -> Span:
    """A PRODUCER span `send <topic>` for one record, child of the current span; the caller
    puts its context in the record's headers and ends it with `sent`. With the no-op tracer
    it is a non-recording span carrying the current context (under a microsecond: no
    attribute is built)."""
    span = tracer.start_span(f"send {topic}", kind=SpanKind.PRODUCER)
    if span.is_recording():
        span.set_attributes(
            {
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.name": topic,
            }
        )
        if key:
            span.set_attribute("messaging.kafka.message.key", key.decode("utf-8", "replace"))
    return span


def sent(
    span: Span, partition: int | None, offset: int | None, error: BaseException | None
) -> None:
    """End a `start_send` span with where the record landed, or why it did not."""
    if not span.is_recording():
        return
    if partition is not None:
        span.set_attribute("messaging.destination.partition.id", str(partition))
    if offset is not None:
        span.set_attribute("messaging.kafka.offset", offset)
    if error is not None:
        span.set_attribute("error.type", type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR, str(error) or type(error).__qualname__))
    span.end()
