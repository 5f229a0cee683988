"""The chaos checker finds each kind of broken guarantee (and passes a clean history)."""

from collections import Counter
from typing import Any

import pytest

from loadtest.history import History, Refusal, Submitted

pytestmark = pytest.mark.unit

ERROR = {"message": "The provider failed 4 times.", "type": "server_error", "code": "x"}


def ok(token: str, attempts: int = 1) -> dict[str, Any]:
    answer = {"choices": [{"message": {"content": f"echo: {token}"}}]}
    return {"status": "succeeded", "response": answer, "attempts": attempts}


def history() -> History:
    h = History()
    h.accepted = {"a": Submitted("ta", "async", None, 0.0), "b": Submitted("tb", "sync", 5.0, 0)}
    h.seen = {"a": [ok("ta")], "b": [ok("tb", attempts=2)]}
    return h


def check(h: History, calls: Counter[str] | None = None, in_flight: int = 0) -> list[str]:
    return h.check(
        provider_calls=calls if calls is not None else Counter({"ta": 1, "tb": 2}),
        published=Counter({"a": 1, "b": 2}),
        in_flight_at_fault=in_flight,
    )


def test_a_clean_history_passes() -> None:
    assert check(history()) == []


def test_each_broken_guarantee_is_named() -> None:
    lost = history()
    lost.seen.pop("a")
    assert "never reached a terminal result" in check(lost)[0]

    twice = history()
    twice.seen["a"].append({"status": "failed", "error": ERROR})
    assert "different results" in check(twice)[0]

    crossed = history()
    crossed.seen["a"] = [ok("tb")]
    assert "not its own prompt's" in check(crossed)[0]

    unclear = history()
    unclear.seen["a"] = [{"status": "failed", "error": {"message": "no"}}]
    assert "without a clear error" in check(unclear)[0]

    late = history()
    late.seen["b"] = [{**ok("tb", attempts=2), "finished_at": 60.0}]
    assert "past its deadline" in check(late)[0]

    assert "provider calls" in check(history(), Counter({"ta": 3, "tb": 2}))[0]
    assert check(history(), Counter({"ta": 2, "tb": 2}), in_flight=1) == []

    refused = history()
    refused.refused = [Refusal(500, {"error": ERROR}, None)]
    assert "only 503" in check(refused)[0]
    refused.refused = [Refusal(503, {"error": ERROR}, "2")]
    assert check(refused) == []
