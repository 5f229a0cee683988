"""Webhook decisions, pure (for the deliverer, and for ingress and the batch runner, which
announce ended batches): which messages a result makes, to which endpoint, in which shape (the
broker's events, or OpenAI's for Responses API requests and batches), what a delivery
attempt's answer means (Standard Webhooks: only 2xx delivers, 410 disables, Retry-After
honoured), and the signature headers (which the `openai` SDK's `webhooks.unwrap` accepts)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook as Signer

from schemas.batches import Batch, BatchStatus
from schemas.envelopes import Delivery, Result, Status, WebhookEvent
from schemas.status import status_document
from schemas.webhook_events import OpenAIEvent, WebhookEndpoint, WebhookFormat

EVENTS = {
    Status.SUCCEEDED: WebhookEvent.REQUEST_COMPLETED,
    Status.FAILED: WebhookEvent.REQUEST_FAILED,
    Status.CANCELLED: WebhookEvent.REQUEST_CANCELLED,
    Status.EXPIRED: WebhookEvent.REQUEST_EXPIRED,
}

RESPONSE_ID_PREFIX = "resp_"
"""Responses API requests carry ids `resp_…` (the Response's id is the request's)."""

RESPONSE_EVENTS = {
    Status.SUCCEEDED: OpenAIEvent.RESPONSE_COMPLETED,
    Status.FAILED: OpenAIEvent.RESPONSE_FAILED,
    Status.CANCELLED: OpenAIEvent.RESPONSE_CANCELLED,
    Status.EXPIRED: OpenAIEvent.RESPONSE_FAILED,  # OpenAI has no expired response
}

BATCH_EVENTS = {
    BatchStatus.COMPLETED: OpenAIEvent.BATCH_COMPLETED,
    BatchStatus.FAILED: OpenAIEvent.BATCH_FAILED,
    BatchStatus.EXPIRED: OpenAIEvent.BATCH_EXPIRED,
    BatchStatus.CANCELLED: OpenAIEvent.BATCH_CANCELLED,
}

Shapes = dict[WebhookFormat, dict[str, Any] | None]
"""One event's payload in each endpoint format; None where that format has no such event."""


def openai_result_event(result: Result) -> OpenAIEvent | None:
    """OpenAI's event for a request's end. Only Responses API requests have one (OpenAI
    announces no chat completion); a success whose Response stopped short (`status:
    incomplete`, e.g. at `max_output_tokens`) is `response.incomplete`."""
    if result.internal or not result.id.startswith(RESPONSE_ID_PREFIX):
        return None
    if result.status is Status.SUCCEEDED and (result.response or {}).get("status") == "incomplete":
        return OpenAIEvent.RESPONSE_INCOMPLETE
    return RESPONSE_EVENTS.get(result.status)


def openai_event(subject: str, event: OpenAIEvent, at: float) -> dict[str, Any]:
    """OpenAI's event object about `subject` (a response or batch id), as
    `client.webhooks.unwrap()` parses it. Its `id` is fixed by subject and type, so an event
    made again after a crash is the same event."""
    digest = hashlib.sha256(f"{subject}\0{event.value}".encode()).hexdigest()[:32]
    return {
        "id": f"evt_{digest}",
        "object": "event",
        "created_at": int(at),
        "type": event.value,
        "data": {"id": subject},
    }


def messages(
    result: Result, endpoints: Sequence[WebhookEndpoint], max_payload_bytes: int, now: float
) -> list[Delivery]:
    """One delivery per webhook that wants this result's event: the tenant's registered
    endpoints (each in its format), then the request's own (the broker's format). The broker's
    payload carries the status document, or only a link to it when it is larger than
    `max_payload_bytes`; OpenAI's carries the response id."""
    event = EVENTS.get(result.status)
    if event is None or result.internal:  # the broker's own work (semantic cache embeddings)
        return []
    data = status_document(result.id, result.status, result)
    if len(orjson.dumps(data)) > max_payload_bytes:
        data = status_document(result.id, result.status, None) | {"truncated": True}
    theirs = openai_result_event(result)
    openai = openai_event(result.id, theirs, result.finished_at) if theirs else None
    shapes: Shapes = {
        WebhookFormat.AIBROKER: _payload(event, data, now),
        WebhookFormat.OPENAI: openai,
    }
    hooks = [(hook, True) for hook in endpoints]
    if result.webhook:
        own = WebhookEndpoint(url=result.webhook.url, events=list(result.webhook.events))
        hooks.append((own, False))
    return _deliveries(result.id, result.tenant, event, shapes, hooks, now)


def batch_messages(
    batch: Batch, endpoints: Sequence[WebhookEndpoint], now: float
) -> list[Delivery]:
    """One delivery per endpoint of the tenant that wants this ended batch's event, with a
    `webhook-id` fixed by batch and endpoint (a repeat after a crash is the same message)."""
    event = WebhookEvent(f"batch.{batch.status.value}")
    theirs = openai_event(batch.id, BATCH_EVENTS[batch.status], _ended_at(batch) or now)
    return endpoint_messages(
        batch.id, batch.tenant, event, batch.public(), endpoints, now, openai=theirs
    )


def _ended_at(batch: Batch) -> int | None:
    ended = {
        BatchStatus.COMPLETED: batch.completed_at,
        BatchStatus.FAILED: batch.failed_at,
        BatchStatus.EXPIRED: batch.expired_at,
        BatchStatus.CANCELLED: batch.cancelled_at,
    }
    return ended.get(batch.status)


def endpoint_messages(
    subject: str,
    tenant: str,
    event: WebhookEvent,
    data: dict[str, Any],
    endpoints: Sequence[WebhookEndpoint],
    now: float,
    openai: dict[str, Any] | None = None,
) -> list[Delivery]:
    """One delivery of `event` about `subject` (a batch, a budget threshold) per endpoint of
    the tenant that wants it; its `webhook-id` fixed by subject and URL. `openai` is the same
    event in OpenAI's shape, for endpoints that asked for that (None: OpenAI has no such
    event, and they hear nothing of it)."""
    shapes: Shapes = {
        WebhookFormat.AIBROKER: _payload(event, data, now),
        WebhookFormat.OPENAI: openai,
    }
    hooks = [(hook, True) for hook in endpoints]
    return _deliveries(subject, tenant, event, shapes, hooks, now)


def _payload(event: WebhookEvent, data: dict[str, Any], now: float) -> dict[str, Any]:
    """The broker's own event shape."""
    return {
        "type": event.value,
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(),
        "data": data,
    }


def _deliveries(
    subject: str,
    tenant: str,
    event: WebhookEvent,
    shapes: Shapes,
    hooks: list[tuple[WebhookEndpoint, bool]],
    now: float,
) -> list[Delivery]:
    """A delivery to each hook whose format has a shape of the event it asked for. Its
    `event` stays the broker's name of what happened; its payload (and the type the delivery
    log shows) is in the hook's format."""
    made = []
    for hook, endpoint in hooks:
        payload = shapes[hook.format]
        if payload is None or payload["type"] not in hook.events:
            continue
        # The same URL registered in both formats gets two messages, two webhook-ids.
        where = hook.url if hook.format is WebhookFormat.AIBROKER else f"{hook.url} (openai)"
        made.append(
            Delivery(
                id=message_id(subject, where),
                request_id=subject,
                tenant=tenant,
                url=hook.url,
                event=event,
                payload=payload,
                endpoint=endpoint,
                created_at=now,
            )
        )
    return made


def message_id(subject: str, url: str) -> str:
    """The `webhook-id` of the message about a request or batch to one URL: the same however
    often it is made again (a result redelivered after a crash), so receivers can dedupe."""
    return "msg_" + hashlib.sha256(f"{subject}\0{url}".encode()).hexdigest()[:26]


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class RetryIn:
    delay_s: float


@dataclass(frozen=True)
class GiveUp:
    reason: str


@dataclass(frozen=True)
class Disable:
    """410 Gone: the receiver asks never to be called again."""


def after_attempt(
    status: int | None,
    retry_after: float | None,
    attempt: int,
    schedule: list[float],
    jitter: float,
) -> Delivered | RetryIn | GiveUp | Disable:
    """What follows attempt number `attempt` (1-based) that got `status` (None: no answer).
    `schedule[i]` is the wait before attempt i + 1 (`schedule[0]`, the first, is 0); each
    wait is spread ±10 % by `jitter` (uniform in [0, 1)) and never shorter than
    `retry_after`."""
    if status is not None and 200 <= status < 300:
        return Delivered()
    if status == 410:
        return Disable()
    if attempt >= len(schedule):
        return GiveUp(f"no 2xx after {attempt} attempts (last: {status or 'no answer'})")
    delay = schedule[attempt] * (0.9 + 0.2 * jitter)
    return RetryIn(max(delay, retry_after or 0.0))


def signed_headers(delivery: Delivery, body: bytes, secrets: list[str]) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and one `v1,` signature per secret (two while a
    secret is being rotated)."""
    at = datetime.fromtimestamp(time.time(), UTC)
    text = body.decode()
    signatures = " ".join(Signer(s).sign(delivery.id, at, text) for s in secrets)
    return {
        "webhook-id": delivery.id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
