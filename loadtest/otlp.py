"""An OTLP/HTTP traces endpoint (protobuf) that keeps every span it is sent: what the tracing
tests assert on and what the latency-budget benchmark reads its stage times from."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from aibroker.devstack.embedded import free_port


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    error: bool
    events: tuple[str, ...]
    request_id: str
    """The `aibroker.request_id` attribute, where the span has one."""
    kind: int
    """OTLP's span kind: 2 server, 3 client, 4 producer, 5 consumer."""
    attributes: dict[str, Any]
    start_ns: int = 0
    end_ns: int = 0
    """Wall-clock nanoseconds (every process on one machine reads the same clock)."""


def plain(value: AnyValue) -> Any:
    """An OTLP attribute value as Python (arrays as tuples, as the SDK keeps them)."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return tuple(plain(v) for v in value.array_value.values)
    return getattr(value, which) if which else None


class Collector:
    """Receives exports on a free port of 127.0.0.1 until `close()`."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.headers: list[dict[str, str]] = []
        """The HTTP headers of each export request."""
        self.port = free_port()
        collector = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.headers.append({k.lower(): v for k, v in self.headers.items()})
                collector.take(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Receive)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        """The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it (`/v1/traces` is added)."""
        return f"http://127.0.0.1:{self.port}"

    def take(self, export: ExportTraceServiceRequest) -> None:
        for resource in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                self.spans.extend(
                    _span(attributes.get("service.name", ""), span) for span in scope.spans
                )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _span(service: str, span: Any) -> Span:
    attributes = {a.key: plain(a.value) for a in span.attributes}
    return Span(
        service=service,
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        error=span.status.code == 2,  # STATUS_CODE_ERROR
        events=tuple(event.name for event in span.events),
        request_id=str(attributes.get("aibroker.request_id", "")),
        kind=span.kind,
        attributes=attributes,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
    )
