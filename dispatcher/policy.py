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
        targets = resolve(request.model, routes, request.kind)
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
class Fallback:
    """Give up on this target and route to the next one."""


@dataclass(frozen=True)
class Fail:
    exhausted: bool


def next_step(
    target_attempt: int,
    error: ErrorInfo,
    retry_after: float | None,
    policy: RetryPolicy,
    *,
    can_fall_back: bool,
    jitter: float,
    now: float,
    deadline: float | None,
) -> Retry | Fallback | Fail:
    """What follows a failed attempt on a target.

    Retryable errors are retried on the same target with full-jitter exponential backoff,
    never before `retry_after`, up to `max_attempts` or the deadline; then the next target
    is tried, if there is one. A non-retryable error that is the provider's side (5xx class:
    e.g. the broker's credentials refused) also falls back; one that is the request's own
    (4xx) ends it. `jitter` is a uniform draw in [0, 1) supplied by the caller.
    """
    if not error.retryable:
        provider_side = error.http_status >= 500
        return Fallback() if provider_side and can_fall_back else Fail(exhausted=False)
    backoff = jitter * min(policy.max_s, policy.base_s * 2 ** (target_attempt - 1))
    delay = max(backoff, retry_after or 0.0)
    fits = deadline is None or now + delay < deadline
    if target_attempt < policy.max_attempts and fits:
        return Retry(delay)
    return Fallback() if can_fall_back else Fail(exhausted=True)


def delay_topic(delay_s: float) -> str:
    """The longest delay topic not longer than the delay (the shortest for tiny delays)."""
    seconds = {"1s": 1, "10s": 10, "60s": 60, "10m": 600}
    fitting = [d for d in RETRY_DELAYS if seconds[d] <= delay_s]
    return fitting[-1] if fitting else RETRY_DELAYS[0]
