"""The per-process Redis breaker and deadlines, with a clock and calls made for the test: a
hung call costs its deadline, a few in a row open the breaker, calls then fail at once, and
one probe at a time finds Redis back."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from aibroker.stores.guard import Breaker, RedisGuard, RedisUnavailable, deadline

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def hang() -> str:
    await asyncio.sleep(3600)
    return "never"


async def ok() -> str:
    return "ok"


async def refused() -> str:
    raise RedisConnectionError("refused")


def guard(clock: Clock) -> RedisGuard:
    return RedisGuard(0.02, failures_to_open=3, cooldown_s=2.0, clock=clock)


async def test_a_hung_call_costs_its_deadline_then_the_breaker_answers_at_once() -> None:
    clock = Clock()
    g = guard(clock)
    loop = asyncio.get_running_loop()
    for _ in range(3):
        started = loop.time()
        with pytest.raises(RedisUnavailable):
            await g.run(hang)
        assert loop.time() - started < 0.5
    assert g.state is Breaker.OPEN
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    with pytest.raises(RedisUnavailable, match="treated as down"):
        await g.run(counted)
    assert calls == 0  # failed without touching Redis


async def test_one_probe_at_a_time_then_closed() -> None:
    clock = Clock()
    g = guard(clock)
    for _ in range(3):
        with pytest.raises(RedisUnavailable):
            await g.run(refused)
    clock.now += 2.5  # the cool-down is over
    release = asyncio.Event()

    async def slow_ok() -> str:
        await release.wait()
        return "ok"

    probe = asyncio.create_task(g.run(slow_ok))
    await asyncio.sleep(0)
    assert g.state is Breaker.PROBING
    with pytest.raises(RedisUnavailable):
        await g.run(ok)  # another caller while the probe runs
    release.set()
    assert await probe == "ok"
    assert g.state.value == "closed"  # (mypy narrowed the property above)
    assert await g.run(ok) == "ok"


async def test_a_failed_probe_opens_it_again() -> None:
    clock = Clock()
    g = guard(clock)
    for _ in range(3):
        with pytest.raises(RedisUnavailable):
            await g.run(refused)
    clock.now += 2.5
    with pytest.raises(RedisUnavailable):
        await g.run(refused)  # the probe
    with pytest.raises(RedisUnavailable, match="treated as down"):
        await g.run(ok)  # a new cool-down began


async def test_an_error_redis_answered_is_not_an_outage() -> None:
    g = guard(Clock())

    async def script_error() -> str:
        raise ResponseError("WRONGTYPE")

    for _ in range(5):
        with pytest.raises(ResponseError):
            await g.run(script_error)
    assert g.state is Breaker.CLOSED


async def test_failures_apart_do_not_open_it() -> None:
    g = guard(Clock())
    for _ in range(4):
        with pytest.raises(RedisUnavailable):
            await g.run(refused)
        assert await g.run(ok) == "ok"
    assert g.state is Breaker.CLOSED


async def test_a_context_may_give_its_calls_a_longer_deadline() -> None:
    g = guard(Clock())

    async def takes_50ms() -> str:
        await asyncio.sleep(0.05)
        return "slow"

    with pytest.raises(RedisUnavailable):
        await g.run(takes_50ms)
    with deadline(1.0):
        assert await g.run(takes_50ms) == "slow"
