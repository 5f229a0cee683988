"""Usage analytics, the pure part: how one usage event becomes counter increments, and how the
counters of many hours become the rows `GET /admin/v1/usage` answers.

Counters are kept per hour and tenant, one field per (model, user, measure): requests,
errors, prompt/completion/cached tokens, cost in nano-USD, and a latency histogram. Latency
percentiles are read from the histogram: each is the upper bound of the bucket it falls in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from schemas.envelopes import UsageEvent

SEP = "\x1f"
"""Between the parts of a counter's field name (never in a model name or user)."""
LATENCY_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
"""Upper bounds of the latency histogram's buckets (ms); one more bucket holds the rest."""
NANO = Decimal(10**9)
HOUR_S = 3600


class GroupBy(StrEnum):
    TENANT = "tenant"
    MODEL = "model"
    USER = "user"
    HOUR = "hour"
    DAY = "day"


def hour_of(at: float) -> int:
    """The hour bucket of a Unix time (hours since the epoch)."""
    return int(at // HOUR_S)


def increments(event: UsageEvent, cost_nano: int) -> dict[str, int]:
    """The counters one event adds to its hour and tenant."""
    base = f"{event.model}{SEP}{event.user or ''}{SEP}"
    counts = {
        "requests": 1,
        "errors": int(event.status == "error"),
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
        "cached_tokens": event.cached_tokens,
        "cost_nano": cost_nano,
        f"lat{_bucket(event.latency_ms)}": 1,
    }
    return {base + name: value for name, value in counts.items() if value}


def _bucket(latency_ms: float) -> int:
    for i, bound in enumerate(LATENCY_MS):
        if latency_ms <= bound:
            return i
    return len(LATENCY_MS)


@dataclass(frozen=True)
class Counters:
    """One hour of one tenant (`HGETALL` of its hash)."""

    hour: int
    tenant: str
    fields: dict[str, str]


def report(
    counters: Iterable[Counters],
    group_by: list[GroupBy],
    *,
    model: str | None = None,
    user: str | None = None,
) -> list[dict[str, Any]]:
    """Rows of totals, one per group (one row in all without `group_by`), sorted by group."""
    sums: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for hour in counters:
        for field, value in hour.fields.items():
            field_model, field_user, measure = field.split(SEP)
            if (model is not None and field_model != model) or (
                user is not None and field_user != user
            ):
                continue
            parts = {
                GroupBy.TENANT: hour.tenant,
                GroupBy.MODEL: field_model,
                GroupBy.USER: field_user,
                GroupBy.HOUR: str(hour.hour * HOUR_S),
                GroupBy.DAY: str(hour.hour // 24 * 86400),
            }
            sums[tuple(parts[g] for g in group_by)][measure] += int(value)
    return [_row(dict(zip(group_by, key, strict=True)), sums[key]) for key in sorted(sums)]


def _row(group: dict[GroupBy, str], sums: dict[str, int]) -> dict[str, Any]:
    histogram = [sums.get(f"lat{i}", 0) for i in range(len(LATENCY_MS) + 1)]
    row: dict[str, Any] = {str(k): _typed(k, v) for k, v in group.items()}
    return row | {
        "requests": sums.get("requests", 0),
        "errors": sums.get("errors", 0),
        "prompt_tokens": sums.get("prompt_tokens", 0),
        "completion_tokens": sums.get("completion_tokens", 0),
        "cached_tokens": sums.get("cached_tokens", 0),
        "cost_usd": str(Decimal(sums.get("cost_nano", 0)) / NANO),
        "latency_ms": {f"p{p}": percentile(histogram, p / 100) for p in (50, 90, 99)},
    }


def _typed(key: GroupBy, value: str) -> str | int | None:
    if key in (GroupBy.HOUR, GroupBy.DAY):
        return int(value)
    return value or None


def percentile(histogram: list[int], q: float) -> int | None:
    """The upper bound (ms) of the bucket where the `q` quantile falls; None when empty (and
    for the open last bucket, its lower bound: "more than that")."""
    total = sum(histogram)
    if total == 0:
        return None
    rank, seen = q * total, 0
    for i, count in enumerate(histogram):
        seen += count
        if seen >= rank and count:
            return LATENCY_MS[min(i, len(LATENCY_MS) - 1)]
    return LATENCY_MS[-1]
