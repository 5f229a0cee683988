"""Pure decisions of the dispatcher: where a request goes, and what follows a failure."""

from __future__ import annotations

from dataclasses import dataclass

from aibroker.errors import BrokerError, InvalidRequest
from aibroker.routes import RouteTable, resolve
from schemas.envelopes import ErrorInfo, Request, Target
from topics.catalog import RETRY_DELAYS


@dataclass(frozen=True)
class Dispatch:
    target: Target


@dataclass(frozen=True)
class Reject:
    error: BrokerError


@dataclass(frozen=True)
class Expire:
    """Its deadline passed: it must not be sent anywhere."""


def choose_target(request: Request, routes: RouteTable, now: float) -> Dispatch | Reject | Expire:
    """The first target of the request's model that it has not tried yet."""
    if request.deadline is not None and now >= request.deadline:
        return Expire()
    try:
        targets = resolve(request.model, routes)
    except BrokerError as exc:
        return Reject(exc)
    for target in targets:
        if target not in request.tried:
            return Dispatch(target)
    return Reject(InvalidRequest(f"every target of '{request.model}' has been tried"))


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    max_s: float


@dataclass(frozen=True)
class Retry:
    delay_s: float


@dataclass(frozen=True)
class Fail:
    exhausted: bool


def next_step(
    attempt: int,
    error: ErrorInfo,
    retry_after: float | None,
    policy: RetryPolicy,
    *,
    jitter: float,
    now: float,
    deadline: float | None,
) -> Retry | Fail:
    """Retry with full-jitter exponential backoff, never before `retry_after`, or give up.

    `jitter` is a uniform draw in [0, 1) supplied by the caller so this stays pure.
    """
    if not error.retryable:
        return Fail(exhausted=False)
    if attempt >= policy.max_attempts:
        return Fail(exhausted=True)
    backoff = jitter * min(policy.max_s, policy.base_s * 2 ** (attempt - 1))
    delay = max(backoff, retry_after or 0.0)
    if deadline is not None and now + delay >= deadline:
        return Fail(exhausted=True)
    return Retry(delay)


def delay_topic(delay_s: float) -> str:
    """The longest delay topic not longer than the delay (the shortest for tiny delays)."""
    seconds = {"1s": 1, "10s": 10, "60s": 60, "10m": 600}
    fitting = [d for d in RETRY_DELAYS if seconds[d] <= delay_s]
    return fitting[-1] if fitting else RETRY_DELAYS[0]
