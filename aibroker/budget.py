"""Budgets that warn before they bite: the shares of `budget_usd_month` that are announced
(a `budget.threshold` webhook event, once per threshold per month) as the month's spend
crosses them."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from aibroker.rules.webhooks import endpoint_messages
from schemas.envelopes import Delivery, WebhookEvent
from schemas.webhook_events import WebhookEndpoint

THRESHOLDS = (50, 80, 100)
"""Percent of the monthly budget."""


def reached(spent: Decimal, budget: Decimal) -> list[int]:
    """The thresholds `spent` has reached (all of them for a zero budget)."""
    if budget <= 0:
        return list(THRESHOLDS)
    return [pct for pct in THRESHOLDS if spent * 100 >= budget * pct]


def threshold_messages(
    tenant: str,
    month: str,
    pct: int,
    spent: Decimal,
    budget: Decimal,
    endpoints: Sequence[WebhookEndpoint],
    now: float,
) -> list[Delivery]:
    """One `budget.threshold` delivery per endpoint of the tenant that wants it; its
    `webhook-id` is fixed by tenant, month, threshold and URL (a repeat is the same message)."""
    data = {
        "object": "budget.threshold",
        "tenant": tenant,
        "month": month,
        "threshold_percent": pct,
        "spent_usd": str(spent),
        "budget_usd_month": str(budget),
    }
    subject = f"budget:{tenant}:{month}:{pct}"
    return endpoint_messages(subject, tenant, WebhookEvent.BUDGET_THRESHOLD, data, endpoints, now)
