"""The messages of the AsyncAPI document (`topics/asyncapi.py`): which envelope each carries,
its Kafka key, and the headers that travel with it (every `aib-*` header, the trace context)."""

from __future__ import annotations

from typing import Any

from aibroker.kafka.acceptance import GIVE_UP_HEADER
from aibroker.kafka.dlq import DLQ_HEADERS
from aibroker.kafka.publisher import DEST_HEADER, DUE_HEADER, KIND_HEADER
from aibroker.signing import SIGNATURE_HEADER
from aibroker.telemetry.tracing import PROPAGATED

BINDING = "0.5.0"
"""The version of AsyncAPI's Kafka bindings used."""

_TRACE = {
    name: {"type": "string", "description": f"W3C trace context (`{name}`)."}
    for name in sorted(PROPAGATED)
}
_SIGNED = {
    SIGNATURE_HEADER: {
        "type": "string",
        "pattern": "^(broker|tenant)=[0-9a-f]{64}$",
        "description": "HMAC-SHA256 of the record's value, hex: `tenant=` with the tenant's "
        "producer secret (a direct producer), `broker=` with the broker's own. Required where "
        "`AIBROKER_AUTH_REQUIRE_SIGNED_ENVELOPES` is set; a signature that does not verify "
        "sends the record to the DLQ as `unauthenticated`.",
    },
    GIVE_UP_HEADER: {
        "type": "string",
        "description": "Ingress only: the Unix time it stopped waiting for this write and "
        "answered 503; a record appended later is dropped.",
    },
}
_DELAYED = {
    DUE_HEADER: {"type": "string", "description": "Unix time the record is due."},
    DEST_HEADER: {"type": "string", "description": "The topic the record goes to when due."},
}
_DLQ = {
    name: {"type": "string", "description": f"Why and whence (`{name.removeprefix('aib-dlq-')}`)."}
    for name in DLQ_HEADERS
}
_CHUNK = {KIND_HEADER: {"type": "string", "const": "chunk", "description": "A streamed Chunk."}}

# message name -> (payload schema name, title, extra headers, key, summary)
MESSAGES: dict[str, tuple[str, str, dict[str, Any], str, str]] = {
    "submission": (
        "RequestSubmission",
        "Request (as a producer writes it)",
        _SIGNED,
        "request id",
        "A new request: the envelope without the fields only the broker sets.",
    ),
    "request": ("Request", "Request", _SIGNED, "request id", "The whole request envelope."),
    "delayedRequest": (
        "Request",
        "Request, delayed",
        _DELAYED,
        "request id",
        "A request waiting for a retry or for quota.",
    ),
    "outcome": ("Outcome", "Outcome", {}, "request id", "A consumer's failure report."),
    "result": ("Result", "Result", {}, "request id", "A request's terminal state."),
    "chunk": ("Chunk", "Chunk", _CHUNK, "request id", "One streamed piece of a sync answer."),
    "usageEvent": ("UsageEvent", "Usage event", {}, "tenant", "One provider call, billed."),
    "batchStarted": ("BatchStarted", "Batch started", {}, "batch id", "A batch to run."),
    "delivery": (
        "Delivery",
        "Webhook delivery",
        {},
        "request or batch id",
        "A webhook message on its way.",
    ),
    "delayedDelivery": (
        "Delivery",
        "Webhook delivery, delayed",
        _DELAYED,
        "request or batch id",
        "A webhook delivery waiting for its next attempt.",
    ),
    "deadLetter": (
        "DeadLetter",
        "Dead letter",
        _DLQ,
        "request id",
        "The record as it was (a Request, or bytes that did not decode), with the reason.",
    ),
    "auditEntry": ("AuditEntry", "Audit entry", {}, "tenant", "Who did what."),
}


def message(name: str) -> dict[str, Any]:
    payload, title, headers, key, summary = MESSAGES[name]
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "headers": {"type": "object", "properties": {**headers, **_TRACE}},
        "payload": {"$ref": f"#/components/schemas/{payload}"},
        "bindings": {
            "kafka": {"key": {"type": "string", "description": key}, "bindingVersion": BINDING}
        },
    }
