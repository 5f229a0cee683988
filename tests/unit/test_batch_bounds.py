"""A caller's bounds on a batch job: the metadata that sets them (and the bad values refused,
naming their key), and the table of when a running batch stops. And the flex tier's pure
parts: its longer timeout, and its tier kept through a stream for billing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aibroker.prices import Billing
from aibroker.rules.batch_bounds import (
    NONE,
    BadBound,
    Bounds,
    StopReason,
    Tally,
    parse_bounds,
    stop_reason,
    stopped_error,
    with_defaults,
)
from consumers.pool.engine import tier_timeout
from schemas.chunks import assemble

pytestmark = pytest.mark.unit


def test_metadata_without_bounds_sets_none_and_other_keys_are_the_callers() -> None:
    assert parse_bounds(None) is NONE
    assert parse_bounds({"job": "nightly", "aibroker": "x"}) == NONE
    assert not NONE.stops


def test_every_bound_is_read_from_its_string() -> None:
    bounds = parse_bounds(
        {
            "aibroker.max_cost_usd": " 2.50",
            "aibroker.max_failed_lines": "10",
            "aibroker.max_failed_share": "0.1",
            "aibroker.min_lines_for_share": "50",
            "aibroker.defaults": '{"temperature": 0, "max_tokens": 256}',
            "job": "nightly",
        }
    )
    assert bounds == Bounds(
        max_cost_usd=Decimal("2.50"),
        max_failed_lines=10,
        max_failed_share=0.1,
        min_lines_for_share=50,
        defaults={"temperature": 0, "max_tokens": 256},
    )
    assert bounds.stops
    assert parse_bounds({"aibroker.max_failed_share": "0.5"}).min_lines_for_share == 20
    assert not parse_bounds({"aibroker.defaults": "{}"}).stops  # defaults alone stop nothing


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("aibroker.max_cost_usd", "cheap"),
        ("aibroker.max_cost_usd", "0"),
        ("aibroker.max_cost_usd", "-1"),
        ("aibroker.max_cost_usd", "NaN"),
        ("aibroker.max_cost_usd", "Infinity"),
        ("aibroker.max_failed_lines", "-1"),
        ("aibroker.max_failed_lines", "2.5"),
        ("aibroker.max_failed_share", "1"),
        ("aibroker.max_failed_share", "-0.1"),
        ("aibroker.max_failed_share", "nan"),
        ("aibroker.max_failed_share", "a tenth"),
        ("aibroker.min_lines_for_share", "0"),
        ("aibroker.defaults", "[1, 2]"),
        ("aibroker.defaults", "{not json"),
        ("aibroker.defaults", '{"model": "other"}'),
        ("aibroker.defaults", '{"stream": true}'),
        ("aibroker.max_cost", "5"),  # misspelt: refused, never silently unbounded
    ],
)
def test_a_bad_bound_is_refused_naming_its_key(key: str, value: str) -> None:
    with pytest.raises(BadBound) as caught:
        parse_bounds({key: value})
    assert caught.value.key == key
    assert key in caught.value.message


def test_a_line_keeps_what_it_sets_over_the_defaults() -> None:
    body = {"model": "m", "messages": [], "max_tokens": 9}
    defaults = {"temperature": 0, "max_tokens": 256}
    assert with_defaults(body, defaults) == {**body, "temperature": 0}


COST = Bounds(max_cost_usd=Decimal("1.00"))
LINES = Bounds(max_failed_lines=3)
SHARE = Bounds(max_failed_share=0.1)  # at least 20 lines finished (the default)
BOTH = Bounds(max_cost_usd=Decimal("1.00"), max_failed_lines=0)


@pytest.mark.parametrize(
    ("bounds", "tally", "stops"),
    [
        (NONE, Tally(0, 1000, 2000, Decimal(10**6)), None),
        # The cost ceiling: reached (not only passed) stops.
        (COST, Tally(5, 0, 100, Decimal("0.99")), None),
        (COST, Tally(5, 0, 100, Decimal("1.00")), StopReason.MAX_COST_USD),
        (COST, Tally(5, 0, 100, Decimal("1.01")), StopReason.MAX_COST_USD),
        # Failed lines: up to the ceiling are tolerated, one more stops.
        (LINES, Tally(50, 3, 100), None),
        (LINES, Tally(50, 4, 100), StopReason.MAX_FAILED_LINES),
        (Bounds(max_failed_lines=0), Tally(0, 1, 100), StopReason.MAX_FAILED_LINES),
        # The share: never before the minimum count, then over the share stops.
        (SHARE, Tally(0, 19, 100), None),
        (SHARE, Tally(18, 2, 100), None),  # 10 % of 20: not over
        (SHARE, Tally(17, 3, 100), StopReason.MAX_FAILED_SHARE),
        (SHARE, Tally(900, 100, 2000), None),
        (SHARE, Tally(899, 101, 2000), StopReason.MAX_FAILED_SHARE),
        (
            Bounds(max_failed_share=0.5, min_lines_for_share=2),
            Tally(0, 2, 10),
            StopReason.MAX_FAILED_SHARE,
        ),
        (
            Bounds(max_failed_share=0.0, min_lines_for_share=1),
            Tally(0, 1, 10),
            StopReason.MAX_FAILED_SHARE,
        ),
        (Bounds(max_failed_share=0.0, min_lines_for_share=1), Tally(1, 0, 10), None),
        # Both reached: the money is named first.
        (BOTH, Tally(5, 1, 100, Decimal(2)), StopReason.MAX_COST_USD),
        (BOTH, Tally(5, 1, 100, Decimal(0)), StopReason.MAX_FAILED_LINES),
    ],
)
def test_when_a_batch_stops(bounds: Bounds, tally: Tally, stops: StopReason | None) -> None:
    assert stop_reason(bounds, tally) is stops


@pytest.mark.parametrize(
    ("reason", "bounds", "said"),
    [
        (StopReason.MAX_COST_USD, Bounds(max_cost_usd=Decimal("1e-7")), "cost 0.0000012 USD"),
        (StopReason.MAX_FAILED_LINES, LINES, "4 lines failed, more than"),
        (StopReason.MAX_FAILED_SHARE, SHARE, "4 of 7 finished lines failed"),
    ],
)
def test_the_stop_is_reported_in_openais_error_shape(
    reason: StopReason, bounds: Bounds, said: str
) -> None:
    error = stopped_error(reason, bounds, Tally(3, 4, 10, Decimal("0.0000012")))
    assert set(error) == {"code", "message", "line", "param"}
    assert error["code"] == f"{reason.value}_reached"
    assert said in error["message"]
    assert "E-" not in error["message"]  # decimals written out, never in exponent form
    assert error["param"] == f"metadata.aibroker.{reason.value}"


def test_a_flex_call_gets_the_flex_timeout() -> None:
    assert tier_timeout(120, 900, {"service_tier": "flex"}) == 900
    assert tier_timeout(120, 900, {"service_tier": "auto"}) == 120
    assert tier_timeout(120, 900, {}) == 120


def test_a_streamed_flex_call_keeps_its_tier_for_billing() -> None:
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "o4-mini"}
    delta = {"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}
    chunks = [head | {"service_tier": "flex", "choices": [delta]}]
    assert Billing.of(assemble(chunks)).service_tier == "flex"
    assert "service_tier" not in assemble([head | {"choices": [delta]}])
