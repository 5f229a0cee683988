"""Pure decisions of the dispatcher: what follows a quota check, what follows a failed
attempt, and what a delayed retry does when it comes due (where a request goes is
`dispatcher.routing`)."""

from __future__ import annotations

from dataclasses import dataclass

from aibroker.errors import BrokerError, BudgetExhausted, QuotaExceeded, Unavailable
from aibroker.rules.breaker import State
from aibroker.rules.quota import Verdict
from schemas.envelopes import ErrorInfo, Mode, Target


@dataclass(frozen=True)
class Dispatch:
    target: Target
    probe: bool = False
    """The target's breaker is half-open: this request is its probe, if it can claim it."""


@dataclass(frozen=True)
class Reject:
    error: BrokerError


@dataclass(frozen=True)
class Expire:
    """Its deadline passed: it must not be sent anywhere."""


@dataclass(frozen=True)
class Admit:
    """Within quota: route it."""


@dataclass(frozen=True)
class Wait:
    """Over quota: hold it this long in a delay topic, then try to admit it again."""

    delay_s: float


@dataclass(frozen=True)
class Drop:
    """Cancelled while it waited: it goes no further."""


def after_quota(
    verdict: Verdict, mode: Mode, deadline: float | None, now: float, jitter: float
) -> Admit | Wait | Reject | Expire | Drop:
    """What follows a quota check. Over a rate or concurrency limit, a sync request is refused
    (429 with Retry-After and the limit's name) and async or batch work waits until it fits,
    unless its deadline comes first. A spent monthly budget refuses every mode. The wait is
    spread by `jitter` (uniform in [0, 1)) over up to one more `retry_after`, so waiting
    requests do not all come back at once."""
    if verdict.admitted:
        return Admit()
    if verdict.cancelled:
        return Drop()
    limit = verdict.limit or "quota"
    if verdict.retry_after_s is None:
        return Reject(BudgetExhausted(f"The monthly budget ({limit}) is spent.", param=limit))
    retry_after = verdict.retry_after_s
    if mode is Mode.SYNC:
        message = f"Rate limit reached ({limit}); retry after {retry_after:.1f} s."
        return Reject(QuotaExceeded(message, param=limit, retry_after=retry_after))
    if deadline is not None and now + retry_after >= deadline:
        return Expire()
    return Wait(retry_after + jitter * max(retry_after, 1.0))


QUOTA_UNKNOWN_WAIT_S = 10.0
"""How long async and batch work waits when its quota cannot be checked (Redis down or hung)."""


def without_quota(mode: Mode, deadline: float | None, now: float) -> Wait | Reject | Expire:
    """What follows when the quota store cannot answer. Nothing is admitted unchecked (quota
    guards money): a sync request is refused with 503 + Retry-After, its client retries;
    async and batch work waits in a delay topic and is checked again, so the partition moves
    on; work whose deadline comes first expires."""
    if mode is Mode.SYNC:
        refused = Unavailable("Quota cannot be checked right now; retry shortly.", retry_after=2)
        return Reject(refused)
    if deadline is not None and now + QUOTA_UNKNOWN_WAIT_S >= deadline:
        return Expire()
    return Wait(QUOTA_UNKNOWN_WAIT_S)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    max_s: float


@dataclass(frozen=True)
class Retry:
    delay_s: float
    counts: bool = True
    """Whether it uses up one of the target's attempts."""


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
    down_cooldown_s: float | None = None,
) -> Retry | Fallback | Fail:
    """What follows a failed attempt on a target.

    Retryable errors are retried on the same target with full-jitter exponential backoff,
    never before `retry_after`, up to `max_attempts` or the deadline; then the next target
    is tried, if there is one. A non-retryable error that is the provider's side (5xx class:
    e.g. the broker's credentials refused) also falls back; one that is the request's own
    (4xx) ends it. `jitter` is a uniform draw in [0, 1) supplied by the caller.

    A request whose target is down learnt nothing about itself (the caller passes the
    breaker's cool-down as `down_cooldown_s` when `treat_target_as_down`: the attempt was the
    target's probe, or its breaker is not closed). Then a retryable error falls back at once
    if it can; else the request waits out the cool-down and the failure does not count
    against its attempts, unless the cool-down ends past its deadline (then the rules above
    apply).
    """
    if down_cooldown_s is not None and error.retryable:
        if can_fall_back:
            return Fallback()
        delay = max(down_cooldown_s, retry_after or 0.0)
        if deadline is None or now + delay < deadline:
            return Retry(delay, counts=False)
    if not error.retryable:
        provider_side = error.http_status >= 500
        return Fallback() if provider_side and can_fall_back else Fail(exhausted=False)
    backoff = jitter * min(policy.max_s, policy.base_s * 2 ** (target_attempt - 1))
    delay = max(backoff, retry_after or 0.0)
    fits = deadline is None or now + delay < deadline
    if target_attempt < policy.max_attempts and fits:
        return Retry(delay)
    return Fallback() if can_fall_back else Fail(exhausted=True)


def treat_target_as_down(mode: Mode, probe: bool, state: State) -> bool:
    """Whether `next_step` treats a failed attempt's target as down: the attempt was the
    target's probe, or the target's breaker is not closed. Only async and batch work does: a
    sync caller gets its answer (or error) now, and never waits a target out."""
    return mode is not Mode.SYNC and (probe or state is not State.CLOSED)


@dataclass(frozen=True)
class SendUnchanged:
    """Due, and its target is up (or it is not a retry): on to its destination, unchanged."""


@dataclass(frozen=True)
class ProbeTarget:
    """Due while its target is half-open: it probes the target if it can claim the probe;
    else it avoids the target like one that is down."""


@dataclass(frozen=True)
class AvoidTarget:
    """Due while its target is down: `avoid_down_target` says where it goes instead."""


def step_when_due(target_state: State) -> SendUnchanged | ProbeTarget | AvoidTarget:
    """What a delayed retry does when it comes due, by its target's breaker (`CLOSED` for a
    record that is not a retry on a dispatch topic)."""
    if target_state is State.CLOSED:
        return SendUnchanged()
    if target_state is State.HALF_OPEN:
        return ProbeTarget()
    return AvoidTarget()


@dataclass(frozen=True)
class SendAnyway:
    """A sync retry with nowhere else to go: sent to its down target (its caller is waiting
    for an answer, and the target may answer after all)."""


def avoid_down_target(
    can_fall_back: bool, mode: Mode, deadline: float | None, now: float, cooldown_s: float
) -> Fallback | SendAnyway | Expire | Wait:
    """A retry whose target is down: the next target if there is one; else a sync one is sent
    anyway, and other work waits out the breaker's cool-down unless its deadline passed."""
    if can_fall_back:
        return Fallback()
    if mode is Mode.SYNC:
        return SendAnyway()
    if deadline is not None and now >= deadline:
        return Expire()
    return Wait(cooldown_s)
