"""Checking a webhook the broker sent: Standard Webhooks signatures with the tenant's secret
(`whsec_…`), the timestamp within five minutes; either secret of a rotation verifies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["WebhookVerificationError", "verify_webhook"]


def verify_webhook(
    body: bytes, headers: Mapping[str, str], secrets: str | Sequence[str]
) -> dict[str, Any]:
    """The event (`type`, `timestamp`, `data`) if `body` is signed by one of `secrets`;
    WebhookVerificationError otherwise. Pass the raw body, as received."""
    given = [secrets] if isinstance(secrets, str) else list(secrets)
    lowered = {k.lower(): v for k, v in headers.items()}
    failure: WebhookVerificationError | None = None
    for secret in given:
        try:
            event: dict[str, Any] = Webhook(secret).verify(body, lowered)
        except WebhookVerificationError as exc:
            failure = exc
            continue
        return event
    raise failure or WebhookVerificationError("no secret given")
