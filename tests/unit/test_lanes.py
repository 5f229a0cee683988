"""Lane priority: batch waits for interactive work in flight, never longer than its bound."""

from __future__ import annotations

import asyncio
import time

import pytest

from dispatcher.lanes import LaneGate

pytestmark = pytest.mark.unit


async def test_batch_goes_at_once_when_no_interactive_work_is_in_flight() -> None:
    gate = LaneGate(max_wait_s=5)
    await asyncio.wait_for(gate.batch_turn(), 0.5)


async def test_batch_waits_until_interactive_work_clears() -> None:
    gate = LaneGate(max_wait_s=5)
    order: list[str] = []

    async def interactive() -> None:
        with gate.interactive():
            await asyncio.sleep(0.05)
            order.append("interactive")

    async def batch() -> None:
        await gate.batch_turn()
        order.append("batch")

    first = asyncio.create_task(interactive())
    await asyncio.sleep(0)  # the interactive record is in flight
    await asyncio.gather(batch(), first)
    assert order == ["interactive", "batch"]


async def test_batch_is_slowed_not_starved() -> None:
    gate = LaneGate(max_wait_s=0.05)
    with gate.interactive():  # interactive work that never clears
        started = time.monotonic()
        await gate.batch_turn()
        assert time.monotonic() - started < 1.0
