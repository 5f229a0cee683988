"""How an offload pool cuts its waiting lines into provider batches, and how often it polls
one: pure functions over plain values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """One provider batch's bounds (`AIBROKER_OFFLOAD_MAX_*`) and the polling backoff."""

    max_lines: int
    max_bytes: int
    max_age_s: float
    poll_min_s: float = 5.0
    poll_max_s: float = 300.0
    margin_s: float = 3600.0
    """Time left, before a line's deadline, to finish it on demand."""


def take(sizes: list[int], limits: Limits) -> int:
    """How many of the waiting lines (their sizes in bytes, oldest first) go into the next
    provider batch: as many as fit both bounds, and always the first (a line larger than the
    byte bound goes alone, and the provider refuses it as it would on demand)."""
    count, total = 0, 0
    for size in sizes[: limits.max_lines]:
        if count and total + size > limits.max_bytes:
            break
        count += 1
        total += size
    return count


def due(sizes: list[int], oldest_at: float | None, now: float, limits: Limits) -> bool:
    """Whether to send a provider batch now: a full one is ready (lines or bytes), or the
    oldest waiting line has waited `max_age_s`."""
    if not sizes or oldest_at is None:
        return False
    if len(sizes) >= limits.max_lines or sum(sizes) >= limits.max_bytes:
        return True
    return now - oldest_at >= limits.max_age_s


def next_poll_delay(previous_s: float | None, limits: Limits) -> float:
    """The wait before the next read of a batch's state: `poll_min_s` first, then doubled up
    to `poll_max_s` (a provider batch takes minutes to hours; reading it every second would
    spend its rate limit for nothing)."""
    if previous_s is None:
        return limits.poll_min_s
    return min(max(previous_s * 2, limits.poll_min_s), limits.poll_max_s)


def give_up_at(deadlines: list[float | None], margin_s: float) -> float | None:
    """When to stop waiting on a provider batch: `margin_s` before its first line's deadline
    (None: no line has one, so the provider's own expiry ends it)."""
    known = [d for d in deadlines if d is not None]
    return min(known) - margin_s if known else None
