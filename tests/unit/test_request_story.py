"""A request's story told from its recorded calls: order, fallbacks, waits, cost; and when a
key's last use is written again."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from aibroker.ids import new_id
from aibroker.stores.key_use import due
from aibroker.stores.results import RequestState
from aibroker.stores.story import WaitReason, call_entry, wait_entry
from ingress.story import attempts_of, story_document, timeline, total_cost
from schemas.envelopes import Result, Status, Target, UsageEvent

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0


def call(
    at: float, model: str, status: str = "ok", ms: float = 100.0, **extra: str
) -> dict[str, Any]:
    return {
        "at": at,
        "provider": "mock",
        "model": model,
        "status": status,
        "duration_ms": ms,
        **extra,
    }


def test_attempts_are_numbered_in_the_order_they_started() -> None:
    calls = [call(T0 + 5, "echo", ms=500), call(T0 + 1, "fail-503", "error", ms=200)]
    attempts = attempts_of(calls)
    assert [(a["attempt"], a["target"]) for a in attempts] == [
        (1, "mock/fail-503"),
        (2, "mock/echo"),
    ]
    assert attempts[0]["started_at"] == pytest.approx(T0 + 0.8)


def test_the_timeline_tells_queueing_waits_and_a_fallback() -> None:
    attempts = attempts_of(
        [
            call(T0 + 1, "fail-503", "error", ms=500),
            call(T0 + 3, "fail-503", "error", ms=500),
            call(T0 + 4, "echo", ms=200),
        ]
    )
    steps = timeline(T0, attempts)
    assert [s["step"] for s in steps] == [
        "accepted",
        "queued",
        "attempt",
        "waited",
        "attempt",
        "waited",
        "fallback",
        "attempt",
    ]
    assert steps[1]["duration_ms"] == pytest.approx(500.0)  # accepted at T0, first call at T0+0.5
    assert steps[3]["duration_ms"] == pytest.approx(1500.0)  # the retry's backoff
    assert (steps[6]["from"], steps[6]["to"]) == ("mock/fail-503", "mock/echo")


def test_a_wait_says_why_the_dispatcher_held_the_request() -> None:
    attempts = attempts_of([call(T0 + 2, "fail-503", "error", ms=500), call(T0 + 6, "echo")])
    waits = [
        wait_entry(WaitReason.QUOTA, 1.0, T0 + 0.1, "tenant.rpm"),
        wait_entry(WaitReason.RETRY, 3.0, T0 + 2.1, "server_error"),
    ]
    steps = timeline(T0, attempts, waits)
    assert [(s["step"], s.get("reasons")) for s in steps if "reasons" in s] == [
        ("queued", ["quota: tenant.rpm"]),
        ("waited", ["retry: server_error"]),
    ]
    assert all(s["step"] != "waiting" for s in steps)  # an ended request waits no more


def test_a_request_held_now_ends_with_waiting_until_when() -> None:
    attempts = attempts_of([call(T0 + 2, "fail-503", "error", ms=500)])
    waits = [wait_entry(WaitReason.BREAKER, 10.0, T0 + 2.5)]
    last = timeline(T0, attempts, waits, ended=False)[-1]
    assert last == {"at": T0 + 2.5, "step": "waiting", "reasons": ["breaker"], "until": T0 + 12.5}
    # Never called yet: held over quota since it was accepted.
    held = timeline(T0, [], [wait_entry(WaitReason.QUOTA, 2.0, T0, "key.tpm")], ended=False)
    assert [s["step"] for s in held] == ["accepted", "waiting"]
    assert held[-1]["reasons"] == ["quota: key.tpm"]
    assert timeline(T0, attempts, [], ended=False)[-1]["step"] == "attempt"  # nothing recorded


def test_cost_sums_the_priced_calls_only() -> None:
    attempts = attempts_of([call(T0, "a", cost_usd="0.001"), call(T0 + 1, "b", cost_usd="0.0025")])
    assert total_cost(attempts) == "0.0035"
    assert total_cost(attempts_of([call(T0, "a", "error")])) is None


def test_the_document_ends_with_the_result() -> None:
    request_id = new_id("req", now_ms=int(T0 * 1000))
    result = Result(
        id=request_id,
        tenant="acme",
        status=Status.SUCCEEDED,
        attempts=1,
        finished_at=T0 + 2,
        served_by=Target(provider="mock", model="echo"),
        cost_usd=Decimal("0.001"),
    )
    state = RequestState(request_id, "acme", Status.SUCCEEDED, result)
    doc = story_document(request_id, state, [call(T0 + 1, "echo", cost_usd="0.001")], [])
    assert doc["accepted_at"] == pytest.approx(T0)
    assert doc["timeline"][-1] == {"at": T0 + 2, "step": "succeeded"}
    assert doc["request"]["served_by"] == {"provider": "mock", "model": "echo"}
    assert (doc["fallbacks"], doc["cost_usd"], doc["tenant"]) == (0, "0.001", "acme")


def test_a_call_entry_keeps_no_prompt_and_no_key() -> None:
    event = UsageEvent(
        request_id="req_1",
        tenant="acme",
        key_id="key_secretish",
        model="fast",
        provider="mock",
        upstream_model="echo",
        prompt_tokens=3,
        completion_tokens=4,
        cached_tokens=0,
        latency_ms=12.34,
        at=T0,
        status="error",
        error_code="upstream_503",
    )
    entry = call_entry(event)
    assert entry["error_code"] == "upstream_503"
    assert entry["duration_ms"] == 12.3
    assert "key_id" not in entry
    assert "cost_usd" not in entry


@pytest.mark.parametrize(
    ("last", "now", "expected"),
    [(None, T0, True), (T0, T0 + 59.9, False), (T0, T0 + 60, True), (T0, T0 - 5, False)],
)
def test_a_keys_use_is_written_at_most_once_a_minute(
    last: float | None, now: float, expected: bool
) -> None:
    assert due(last, now) is expected
