"""Pure decisions of the dispatcher: what follows a quota check, what follows a failed
attempt, and what a delayed retry does when it comes due (where a request goes is
`dispatcher.routing`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aibroker.errors import BrokerError, BudgetExhausted, QuotaExceeded, Unavailable
from aibroker.rules.breaker import Reading, State
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


class Blame(StrEnum):
    """Whose a retryable failure on a target is, as far as the broker can tell."""

    REQUEST = "request"
    """The request's own, as far as anyone knows: the target served other calls since this
    request began failing on it (or no other call was made). It costs an attempt."""
    TARGET = "target"
    """The target's: other calls on it failed too since its last success, though its breaker
    has not opened yet. It costs no attempt."""
    DOWN = "down"
    """The target's: its breaker is open or half-open, or the attempt was its probe. It costs
    no attempt, and the request waits out the cool-down."""


def blame(mode: Mode, probe: bool, target: Reading, target_attempt: int) -> Blame:
    """Whose a failed attempt is, from the target's breaker read after the failure was recorded
    (`target.failing` counts this request's own failures on it too: at most `target_attempt`
    of them, in a row). Only async and batch work blames the target: a sync caller gets its
    answer (or error) now, and never waits a target out."""
    if mode is Mode.SYNC:
        return Blame.REQUEST
    if probe or target.state is not State.CLOSED:
        return Blame.DOWN
    if target.failing > target_attempt:
        return Blame.TARGET
    return Blame.REQUEST


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
    fault: Blame = Blame.REQUEST,
    cooldown_s: float = 0.0,
) -> Retry | Fallback | Fail | Expire:
    """What follows a failed attempt on a target.

    Retryable errors are retried on the same target with full-jitter exponential backoff,
    never before `retry_after`, up to `max_attempts` or the deadline; then the next target
    is tried, if there is one. A non-retryable error that is the provider's side (5xx class:
    e.g. the broker's credentials refused) also falls back; one that is the request's own
    (4xx) ends it. `jitter` is a uniform draw in [0, 1) supplied by the caller.

    A retryable failure that is the target's (`fault`, from `blame`) taught nothing about the
    request: it falls back at once if it can; else it is retried without using an attempt,
    after the breaker's `cooldown_s` when the target is down, after its backoff while the
    breaker has not opened yet; a wait that would end past the deadline expires it (never a
    failure: the request itself never failed).
    """
    backoff = jitter * min(policy.max_s, policy.base_s * 2 ** (target_attempt - 1))
    if error.retryable and fault is not Blame.REQUEST:
        if can_fall_back:
            return Fallback()
        delay = max(cooldown_s if fault is Blame.DOWN else backoff, retry_after or 0.0)
        if deadline is not None and now + delay >= deadline:
            return Expire()
        return Retry(delay, counts=False)
    if not error.retryable:
        provider_side = error.http_status >= 500
        return Fallback() if provider_side and can_fall_back else Fail(exhausted=False)
    delay = max(backoff, retry_after or 0.0)
    fits = deadline is None or now + delay < deadline
    if target_attempt < policy.max_attempts and fits:
        return Retry(delay)
    return Fallback() if can_fall_back else Fail(exhausted=True)


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
