from typing import Any

import pytest

from aibroker.errors import BudgetExhausted, ModelNotFound, QuotaExceeded
from aibroker.rules.quota import Verdict
from aibroker.rules.tokens import estimate_tokens
from dispatcher.policy import (
    QUOTA_UNKNOWN_WAIT_S,
    Admit,
    Blame,
    Dispatch,
    Drop,
    Expire,
    Fail,
    Fallback,
    Reject,
    Retry,
    RetryPolicy,
    Wait,
    after_quota,
    next_step,
    without_quota,
)
from dispatcher.routing import choose_target
from schemas.envelopes import ErrorInfo, Kind, Mode, Request, Target
from tests.routes import two_providers
from topics.catalog import delay_topic

pytestmark = pytest.mark.unit

ROUTES = two_providers()
POLICY = RetryPolicy(max_attempts=4, base_s=1.0, max_s=60.0)
RETRYABLE = ErrorInfo(message="busy", type="server_error", retryable=True)
FATAL = ErrorInfo(message="bad", type="invalid_request_error", retryable=False, http_status=400)


def req(model: str, **kw: object) -> Request:
    return Request(
        id="req_1", tenant="t", kind=Kind.CHAT, model=model, body={}, created_at=0.0, **kw
    )


def test_alias_goes_to_its_first_target() -> None:
    assert choose_target(req("smart"), ROUTES, now=1) == Dispatch(Target(provider="a", model="big"))


def test_tried_targets_are_skipped() -> None:
    request = req("smart", tried=[Target(provider="a", model="big")])
    assert choose_target(request, ROUTES, now=1) == Dispatch(Target(provider="b", model="large"))


def test_all_targets_tried_is_a_rejection() -> None:
    request = req(
        "smart", tried=[Target(provider="a", model="big"), Target(provider="b", model="large")]
    )
    assert isinstance(choose_target(request, ROUTES, now=1), Reject)


def test_provider_prefix_routes_to_the_upstream_model() -> None:
    assert choose_target(req("b/gpt-x"), ROUTES, now=1) == Dispatch(
        Target(provider="b", model="gpt-x")
    )


@pytest.mark.parametrize("model", ["nope", "c/x", "a/", "/x"])
def test_unknown_model_is_rejected_naming_known_models(model: str) -> None:
    decision = choose_target(req(model), ROUTES, now=1)
    assert isinstance(decision, Reject)
    assert isinstance(decision.error, ModelNotFound)
    assert "smart" in decision.error.message
    assert "a/*" in decision.error.message


def test_past_deadline_expires_before_routing() -> None:
    assert choose_target(req("smart", deadline=10.0), ROUTES, now=10.0) == Expire()
    assert isinstance(choose_target(req("smart", deadline=10.0), ROUTES, now=9.9), Dispatch)


@pytest.mark.parametrize(
    ("attempt", "jitter", "retry_after", "expected"),
    [
        (1, 0.5, None, Retry(0.5)),  # 1 s window, half of it
        (2, 0.5, None, Retry(1.0)),  # 2 s window
        (3, 1.0, None, Retry(4.0)),  # 4 s window, top of it
        (3, 0.0, 7.0, Retry(7.0)),  # never earlier than Retry-After
        (2, 0.9, 0.5, Retry(1.8)),  # backoff longer than Retry-After wins
        (4, 0.5, None, Fail(exhausted=True)),
    ],
)
def test_retry_schedule(
    attempt: int, jitter: float, retry_after: float | None, expected: Retry | Fail
) -> None:
    got = next_step(
        attempt,
        RETRYABLE,
        retry_after,
        POLICY,
        can_fall_back=False,
        jitter=jitter,
        now=0,
        deadline=None,
    )
    assert got == expected


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=50, base_s=1.0, max_s=60.0)
    got = next_step(
        30, RETRYABLE, None, policy, can_fall_back=False, jitter=0.999, now=0, deadline=None
    )
    assert isinstance(got, Retry)
    assert got.delay_s <= 60.0


PROVIDER_SIDE = ErrorInfo(
    message="key refused", type="provider_error", retryable=False, http_status=502
)


@pytest.mark.parametrize(
    ("target_attempt", "error", "can_fall_back", "deadline", "expected"),
    [
        (1, FATAL, True, None, Fail(exhausted=False)),  # the request's own fault: no fallback
        (1, FATAL, False, None, Fail(exhausted=False)),
        (1, PROVIDER_SIDE, True, None, Fallback()),  # the target's fault: next target
        (1, PROVIDER_SIDE, False, None, Fail(exhausted=False)),
        (4, RETRYABLE, True, None, Fallback()),  # retries on this target exhausted
        (4, RETRYABLE, False, None, Fail(exhausted=True)),
        (1, RETRYABLE, True, 100.2, Fallback()),  # no time to wait here: try the next now
        (1, RETRYABLE, False, 100.2, Fail(exhausted=True)),
        (1, RETRYABLE, True, None, Retry(0.5)),  # retry first, fall back later
    ],
)
def test_what_follows_a_failure(
    target_attempt: int,
    error: ErrorInfo,
    can_fall_back: bool,
    deadline: float | None,
    expected: Retry | Fallback | Fail,
) -> None:
    got = next_step(
        target_attempt,
        error,
        None,
        POLICY,
        can_fall_back=can_fall_back,
        jitter=0.5,
        now=100,
        deadline=deadline,
    )
    assert got == expected


def test_retry_that_would_land_after_the_deadline_fails() -> None:
    got = next_step(
        1, RETRYABLE, 30.0, POLICY, can_fall_back=False, jitter=0.5, now=100, deadline=120
    )
    assert got == Fail(exhausted=True)


@pytest.mark.parametrize(
    ("delay", "topic"),
    [
        (0.01, "1s"),
        (1, "1s"),
        (9.9, "1s"),
        (10, "10s"),
        (59, "10s"),
        (60, "60s"),
        (599, "60s"),
        (600, "10m"),
        (7200, "10m"),
    ],
)
def test_delay_topic_never_longer_than_the_delay(delay: float, topic: str) -> None:
    assert delay_topic(delay) == topic


@pytest.mark.parametrize("mode", [Mode.ASYNC, Mode.BATCH])
def test_over_a_rate_limit_async_work_waits_at_least_retry_after(mode: Mode) -> None:
    verdict = Verdict(admitted=False, limit="tenant.rpm", retry_after_s=2.0)
    assert after_quota(verdict, mode, None, now=0, jitter=0.0) == Wait(2.0)
    assert after_quota(verdict, mode, None, now=0, jitter=0.5) == Wait(3.0)
    assert after_quota(verdict, mode, deadline=1.5, now=0, jitter=0.0) == Expire()


def test_over_a_rate_limit_sync_gets_429_naming_the_limit() -> None:
    verdict = Verdict(admitted=False, limit="key.tpm", retry_after_s=0.4)
    step = after_quota(verdict, Mode.SYNC, None, now=0, jitter=0.0)
    assert isinstance(step, Reject)
    assert isinstance(step.error, QuotaExceeded)
    assert step.error.http_status == 429
    assert step.error.retry_after == 0.4
    assert step.error.param == "key.tpm"


def test_a_spent_budget_refuses_every_mode() -> None:
    verdict = Verdict(admitted=False, limit="tenant.budget", retry_after_s=None)
    for mode in Mode:
        step = after_quota(verdict, mode, None, now=0, jitter=0.0)
        assert isinstance(step, Reject)
        assert isinstance(step.error, BudgetExhausted)


def test_admitted_goes_on_and_cancelled_is_dropped() -> None:
    assert after_quota(Verdict(admitted=True), Mode.SYNC, None, 0, 0) == Admit()
    assert after_quota(Verdict(admitted=False, cancelled=True), Mode.ASYNC, None, 0, 0) == Drop()


def test_token_estimate_counts_prompt_and_completion_cap() -> None:
    chat = {"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50}
    assert estimate_tokens(Kind.CHAT, chat, 1024) == 100 + 1 + 50 + 1  # "user" is 4 chars
    assert estimate_tokens(Kind.CHAT, {"messages": []}, 1024) == 1 + 1024
    assert estimate_tokens(Kind.EMBEDDINGS, {"input": ["abcd"] * 10}, 1024) == 11
    assert estimate_tokens(Kind.OCR, {"image": "x" * 1000}, 1024) == 0


@pytest.mark.parametrize(
    ("fault", "retry_after", "expected"),
    [
        (Blame.DOWN, 2.0, Retry(15.0, counts=False)),  # waits out the cool-down
        (Blame.DOWN, 20.0, Retry(20.0, counts=False)),  # or the provider's longer Retry-After
        (Blame.TARGET, None, Retry(4.0, counts=False)),  # its backoff (attempt 4: 8 s window)
        (Blame.TARGET, 5.0, Retry(5.0, counts=False)),  # never before Retry-After
        (Blame.REQUEST, 2.0, Fail(exhausted=True)),  # its own: the last attempt ends it
    ],
)
def test_a_failure_that_is_the_targets_costs_no_attempt(
    fault: Blame, retry_after: float | None, expected: Retry | Fail
) -> None:
    step = next_step(
        POLICY.max_attempts,  # even on its last attempt
        RETRYABLE,
        retry_after,
        POLICY,
        can_fall_back=False,
        jitter=0.5,
        now=0,
        deadline=None,
        fault=fault,
        cooldown_s=15.0,
    )
    assert step == expected


@pytest.mark.parametrize("fault", [Blame.DOWN, Blame.TARGET])
def test_the_targets_failure_falls_back_when_it_can_and_expires_by_its_deadline(
    fault: Blame,
) -> None:
    common: dict[str, Any] = {"jitter": 0.0, "now": 0, "fault": fault, "cooldown_s": 15.0}
    fallback = next_step(1, RETRYABLE, 1.0, POLICY, can_fall_back=True, deadline=None, **common)
    assert fallback == Fallback()
    # No time left to wait: expired, never failed (the request itself did not fail).
    late = next_step(4, RETRYABLE, 1.0, POLICY, can_fall_back=False, deadline=1.0, **common)
    assert late == Expire()
    on_time = next_step(4, RETRYABLE, 1.0, POLICY, can_fall_back=False, deadline=60.0, **common)
    assert isinstance(on_time, Retry)
    assert not on_time.counts


def test_a_non_retryable_error_is_the_requests_whoever_else_fails() -> None:
    for fault in Blame:
        step = next_step(
            1, FATAL, None, POLICY, can_fall_back=True, jitter=0, now=0, deadline=None, fault=fault
        )
        assert step == Fail(exhausted=False)


@pytest.mark.parametrize(
    ("mode", "deadline", "expected"),
    [
        (Mode.ASYNC, None, Wait(QUOTA_UNKNOWN_WAIT_S)),
        (Mode.BATCH, 1000.0 + QUOTA_UNKNOWN_WAIT_S + 1, Wait(QUOTA_UNKNOWN_WAIT_S)),
        (Mode.BATCH, 1000.0 + QUOTA_UNKNOWN_WAIT_S, Expire()),
    ],
)
def test_work_whose_quota_cannot_be_checked_waits_and_is_never_admitted_unchecked(
    mode: Mode, deadline: float | None, expected: object
) -> None:
    assert without_quota(mode, deadline, 1000.0) == expected


def test_a_sync_request_whose_quota_cannot_be_checked_is_refused_with_retry_after() -> None:
    step = without_quota(Mode.SYNC, None, 1000.0)
    assert isinstance(step, Reject)
    assert (step.error.http_status, step.error.retry_after) == (503, 2)
