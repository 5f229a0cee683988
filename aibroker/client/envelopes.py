"""Request envelopes as a direct producer writes them: valid, keyed by their id, without the
fields only the broker sets, signed with the tenant's producer secret (see `aibroker.signing`)."""

from __future__ import annotations

from typing import Any, Literal

from aibroker.ids import new_id
from aibroker.signing import Signer, signature_header
from schemas.bodies import BODIES
from schemas.envelopes import Kind, Mode, Request, Webhook

BROKER_FIELDS = frozenset(
    {
        "attempt",
        "target_attempt",
        "tried",
        "target",
        "probe",
        "reply_to",
        "replay_of",
        "cache_mark",
        "cache_entry",
        "cache_score",
        "internal",
        "guarded",
    }
)
"""Set by the broker alone; a producer's envelope leaves them out (`topics/asyncapi.py`)."""


def new_request(
    *,
    tenant: str,
    kind: Kind,
    body: dict[str, Any],
    now: float,
    model: str | None = None,
    priority: Literal["interactive", "batch"] = "interactive",
    deadline: float | None = None,
    webhook: Webhook | None = None,
    idempotency_key: str | None = None,
    request_id: str | None = None,
) -> Request:
    """A new request envelope. The body is validated as its endpoint validates it (a ValueError
    says what is wrong); `model` defaults to the body's."""
    _, body_type = BODIES[kind.endpoint]
    parsed = body_type.model_validate(body)
    return Request(
        id=request_id or new_id("req", now_ms=int(now * 1000)),
        tenant=tenant,
        kind=kind,
        model=model or parsed.model,
        body=parsed.model_dump(mode="json", exclude_unset=True),
        mode=Mode.ASYNC,
        priority=priority,
        deadline=deadline,
        webhook=webhook,
        idempotency_key=idempotency_key,
        created_at=now,
    )


def submission_value(request: Request) -> bytes:
    """The record's value: the envelope's JSON without the broker's own fields."""
    return request.model_dump_json(exclude=set(BROKER_FIELDS), exclude_none=True).encode()


def record(request: Request, secret: str | None) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the record that submits `request`; signed when a secret is
    given (the tenant's producer secret)."""
    value = submission_value(request)
    headers = [signature_header(value, secret, Signer.TENANT)] if secret else []
    return request.id.encode(), value, headers
