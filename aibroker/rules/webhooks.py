"""Webhook decisions, pure (for the deliverer, and for ingress and the batch runner, which
announce ended batches): which messages a result makes, what a delivery attempt's answer
means (Standard Webhooks: only 2xx delivers, 410 disables, Retry-After honoured), and the
signature headers."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook as Signer

from schemas.batches import Batch
from schemas.envelopes import Delivery, Result, Status, Webhook, WebhookEvent
from schemas.status import status_document

EVENTS = {
    Status.SUCCEEDED: WebhookEvent.REQUEST_COMPLETED,
    Status.FAILED: WebhookEvent.REQUEST_FAILED,
    Status.CANCELLED: WebhookEvent.REQUEST_CANCELLED,
    Status.EXPIRED: WebhookEvent.REQUEST_EXPIRED,
}


def messages(
    result: Result, endpoints: list[Webhook], max_payload_bytes: int, now: float
) -> list[Delivery]:
    """One delivery per webhook that wants this result's event: the tenant's registered
    endpoints, then the request's own. The payload carries the status document, or only a link
    to it when it is larger than `max_payload_bytes`."""
    event = EVENTS.get(result.status)
    if event is None or result.internal:  # the broker's own work (semantic cache embeddings)
        return []
    data = status_document(result.id, result.status, result)
    if len(orjson.dumps(data)) > max_payload_bytes:
        data = status_document(result.id, result.status, None) | {"truncated": True}
    payload = {
        "type": event.value,
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(),
        "data": data,
    }
    hooks = [(hook, True) for hook in endpoints]
    hooks += [(result.webhook, False)] if result.webhook else []
    return [
        Delivery(
            id=message_id(result.id, hook.url),
            request_id=result.id,
            tenant=result.tenant,
            url=hook.url,
            event=event,
            payload=payload,
            endpoint=endpoint,
            created_at=now,
        )
        for hook, endpoint in hooks
        if event in hook.events
    ]


def batch_messages(batch: Batch, endpoints: list[Webhook], now: float) -> list[Delivery]:
    """One delivery per endpoint of the tenant that wants this ended batch's event, with a
    `webhook-id` fixed by batch and endpoint (a repeat after a crash is the same message)."""
    event = WebhookEvent(f"batch.{batch.status.value}")
    return endpoint_messages(batch.id, batch.tenant, event, batch.public(), endpoints, now)


def endpoint_messages(
    subject: str,
    tenant: str,
    event: WebhookEvent,
    data: dict[str, Any],
    endpoints: list[Webhook],
    now: float,
) -> list[Delivery]:
    """One delivery of `event` about `subject` (a batch, a budget threshold) per endpoint of
    the tenant that wants it; its `webhook-id` fixed by subject and URL."""
    payload = {
        "type": event.value,
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(),
        "data": data,
    }
    return [
        Delivery(
            id=message_id(subject, hook.url),
            request_id=subject,
            tenant=tenant,
            url=hook.url,
            event=event,
            payload=payload,
            endpoint=True,
            created_at=now,
        )
        for hook in endpoints
        if event in hook.events
    ]


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
