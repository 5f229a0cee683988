"""Routing strategies, breakers and spill-over: `choose_target` over plain values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aibroker.errors import Unavailable
from aibroker.routes import ProviderConfig, Route, RouteTable, RouteTarget, Strategy
from aibroker.rules.breaker import State, state_at
from dispatcher.health import Health
from dispatcher.policy import Dispatch, Expire, Reject, Wait
from dispatcher.routing import choose_target, rank
from schemas.envelopes import Kind, Mode, Request, Target

pytestmark = pytest.mark.unit

A = RouteTarget(provider="a", model="m", weight=1, price=Decimal("10"))
B = RouteTarget(provider="b", model="m", weight=3, price=Decimal("2"))
C = RouteTarget(provider="c", model="m", weight=1, price=None)


def table(strategy: Strategy, *targets: RouteTarget) -> RouteTable:
    providers = {p: ProviderConfig(name=p, base_url="http://x", api_key="k") for p in "abc"}
    return RouteTable(
        providers=providers, aliases={"x": Route(strategy=strategy, targets=list(targets))}
    )


def req(mode: Mode = Mode.ASYNC, **kw: object) -> Request:
    return Request(
        id="r", tenant="t", kind=Kind.CHAT, model="x", body={}, mode=mode, created_at=0, **kw
    )


def first(strategy: Strategy, health: Health | None = None, draw: float = 0.0) -> str:
    route = table(strategy, A, B, C).aliases["x"]
    return rank(route, health or Health(), draw)[0].provider


def test_ordered_keeps_the_listed_order() -> None:
    assert [t.provider for t in rank(table("ordered", A, B, C).aliases["x"], Health(), 0.9)] == [
        "a",
        "b",
        "c",
    ]


@pytest.mark.parametrize(
    ("draw", "expected"),
    [(0.0, "a"), (0.19, "a"), (0.2, "b"), (0.79, "b"), (0.8, "c"), (0.999, "c")],
)
def test_weighted_picks_by_share_of_weight(draw: float, expected: str) -> None:
    assert first("weighted", draw=draw) == expected  # weights 1:3:1 over [0, 1)


def test_weighted_keeps_the_others_in_order_as_fallbacks() -> None:
    route = table("weighted", A, B, C).aliases["x"]
    assert [t.provider for t in rank(route, Health(), 0.5)] == ["b", "a", "c"]


def test_cheapest_first_and_unpriced_last() -> None:
    assert [t.provider for t in rank(table("cheapest", C, A, B).aliases["x"], Health(), 0)] == [
        "b",
        "a",
        "c",
    ]


def test_least_backlog_orders_by_lag() -> None:
    health = Health(backlog={"a": 50, "b": 7, "c": 9})
    assert first("least_backlog", health) == "b"


def test_open_breakers_are_skipped_and_half_open_ones_probed() -> None:
    routes = table("ordered", A, B)
    health = Health(breakers={"a/m": State.OPEN, "b/m": State.HALF_OPEN})
    assert choose_target(req(), routes, 1, health) == Dispatch(
        Target(provider="b", model="m"), probe=True
    )


def test_every_target_open_sync_gets_503_async_waits_out_the_cooldown() -> None:
    routes = table("ordered", A, B)
    health = Health(breakers={"a/m": State.OPEN, "b/m": State.OPEN}, cooldown_s=15)
    refused = choose_target(req(Mode.SYNC), routes, 1, health)
    assert isinstance(refused, Reject)
    assert isinstance(refused.error, Unavailable)
    assert refused.error.retry_after == 15
    assert choose_target(req(), routes, 1, health) == Wait(15)
    assert choose_target(req(deadline=10.0), routes, 1, health) == Expire()


def test_a_target_over_its_backlog_spills_to_the_next() -> None:
    local = RouteTarget(provider="a", model="m", max_backlog=100)
    routes = table("ordered", local, B)
    spill = choose_target(req(), routes, 1, Health(backlog={"a/m": 100}))
    stay = choose_target(req(), routes, 1, Health(backlog={"a/m": 99}))
    assert spill == Dispatch(Target(provider="b", model="m"))
    assert stay == Dispatch(Target(provider="a", model="m"))


def test_when_every_target_is_over_its_backlog_the_preferred_one_takes_it() -> None:
    routes = table(
        "ordered", A.model_copy(update={"max_backlog": 1}), B.model_copy(update={"max_backlog": 1})
    )
    health = Health(backlog={"a": 5, "b": 5})
    assert choose_target(req(), routes, 1, health) == Dispatch(Target(provider="a", model="m"))


def test_tried_targets_are_skipped_whatever_the_strategy() -> None:
    routes = table("cheapest", A, B)
    request = req(tried=[Target(provider="b", model="m")])
    assert choose_target(request, routes, 1) == Dispatch(Target(provider="a", model="m"))


@pytest.mark.parametrize(
    ("stored", "opened", "now", "expected"),
    [
        (None, 0, 100, State.CLOSED),
        ("closed", 0, 100, State.CLOSED),
        ("open", 90, 100, State.OPEN),
        ("open", 80, 100, State.HALF_OPEN),
        ("half", 90, 100, State.OPEN),
    ],
)
def test_breaker_state_seen_by_readers(
    stored: str | None, opened: float, now: float, expected: State
) -> None:
    assert state_at(stored, opened, now, cooldown_s=15) is expected
