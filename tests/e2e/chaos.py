"""What every chaos scenario shares: open-loop traffic, a fault struck once work is in flight,
and the verdict of the history checker (`loadtest/history.py`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import httpx

from loadtest.history import History, provider_calls, published_results
from loadtest.stack import Stack
from tests.waiting import eventually
from topics.catalog import TopicNames

SCALE = int(os.environ.get("AIBROKER_CHAOS_SCALE", "1"))
N = 40 * SCALE
RATE = 20.0
"""Submissions per second (open loop)."""


async def traffic(
    history: History, client: httpx.AsyncClient, n: int = N, rate: float = RATE
) -> None:
    """`n` submissions at `rate` a second, one in four sync, the rest async."""

    async def one(i: int) -> None:
        await asyncio.sleep(i / rate)
        await history.submit(client, sync=i % 4 == 0)

    await asyncio.gather(*(one(i) for i in range(n)))


async def verdict(
    stack: Stack, history: History, client: httpx.AsyncClient, *, in_flight_at_fault: int = 0
) -> None:
    await history.settle(client)
    broken = history.check(
        provider_calls=await provider_calls(stack.mock_url),
        published=await published_results(stack.kafka, TopicNames(stack.prefix).results),
        in_flight_at_fault=in_flight_at_fault,
    )
    assert not broken, "\n".join(broken[:20]) + troubles(stack)
    assert history.accepted, history.summary()


def troubles(stack: Stack, lines: int = 8) -> str:
    """The last warnings and errors of each service: what a failed verdict needs to be read
    (the test's directory, logs included, is gone by the time CI reports)."""
    out = []
    for name in stack.procs:
        path = stack.logs / f"{name}.log"
        if not path.exists():
            continue
        bad = [
            line
            for line in path.read_text(errors="replace").splitlines()
            if '"level":"error"' in line or '"level":"warning"' in line
        ]
        if bad:
            out.append(f"--- {name} ---\n" + "\n".join(line[:300] for line in bad[-lines:]))
    return "\n\n" + "\n".join(out) if out else ""


def mock_in_flight(stack: Stack) -> int:
    stats = httpx.get(f"{stack.mock_url}/_stats", timeout=10).json()
    return int(stats["in_flight"])


def control(stack: Stack, **faults_now: object) -> None:
    httpx.post(f"{stack.mock_url}/_control", json=faults_now, timeout=10).raise_for_status()


async def with_fault(
    stack: Stack,
    history: History,
    client: httpx.AsyncClient,
    fault: Callable[[], Awaitable[int]],
    *,
    n: int = N,
    rate: float = RATE,
) -> None:
    """Traffic (`n` submissions), the fault once work is in flight, then the verdict. `fault`
    returns the provider calls that were in flight when it struck."""
    flowing = asyncio.create_task(traffic(history, client, n, rate))
    # The first requests wait for the groups to join (on a fresh three-broker cluster with
    # two cores, that took over 20 s once): the fault must still strike work in flight.
    await eventually(_in_flight(stack), what="work in flight", timeout_s=60)
    in_flight = await fault()
    await flowing
    await verdict(stack, history, client, in_flight_at_fault=in_flight)


def _in_flight(stack: Stack) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return mock_in_flight(stack) >= 5

    return probe
