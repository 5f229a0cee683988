"""Quota as the dispatcher and the API read it: the verdict of an admission, and a requests- or
tokens-per-minute bucket now (`aibroker/stores/quota.py` keeps them in Redis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """What an admission found: admitted, cancelled while waiting, or the limit that was hit
    and when it will fit (`retry_after_s` None: waiting will not help, the budget is spent)."""

    admitted: bool
    cancelled: bool = False
    limit: str | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Bucket:
    """A requests- or tokens-per-minute bucket as a client sees it."""

    limit: int
    remaining: int
    reset_s: float
    """Seconds until it is full again."""


def bucket(stored: list[Any], limit: int, now: float) -> Bucket:
    """The bucket now, from its stored level and time (`HMGET v t`), refilled continuously at
    `limit` per minute up to `limit` (as the admission script computes it)."""
    level, at = (float(x) if x is not None else None for x in stored)
    if level is None:
        return Bucket(limit, limit, 0.0)
    level = min(limit, level + max(0.0, now - (now if at is None else at)) * limit / 60)
    return Bucket(limit, max(0, int(level)), round(max(0.0, limit - level) * 60 / limit, 3))
