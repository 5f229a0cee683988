"""The micro-batcher: size and cost limits, the wait, order, splitting, failure isolation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from consumers.pool.batcher import BatchLimits, MicroBatcher, run_isolated, take_batch

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("costs", "limits", "taken"),
    [
        ([1, 1, 1, 1], BatchLimits(3, 100, 0.01), 3),  # item limit
        ([40, 40, 40], BatchLimits(10, 100, 0.01), 2),  # cost limit
        ([500, 1], BatchLimits(10, 100, 0.01), 1),  # an oversized item runs alone
        ([1, 500], BatchLimits(10, 100, 0.01), 1),  # ...and not with the one before it
        ([5], BatchLimits(10, 100, 0.01), 1),
    ],
)
def test_take_batch(costs: list[int], limits: BatchLimits, taken: int) -> None:
    assert take_batch(costs, limits) == taken


def test_run_isolated_fails_only_the_bad_item() -> None:
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(items)
        if 13 in items:
            raise ValueError("unlucky")
        return [i * 2 for i in items]

    results = run_isolated(run, [1, 2, 13, 4, 5])
    assert results[:2] == [2, 4]
    assert results[3:] == [8, 10]
    assert isinstance(results[2], ValueError)
    assert calls[0] == [1, 2, 13, 4, 5]  # one call when nothing fails
    assert [13] in calls


class Recorder:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.delay_s = delay_s
        self.threads: set[str] = set()

    def __call__(self, items: list[str]) -> Sequence[str]:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(items))
        time.sleep(self.delay_s)
        if "poison" in items:
            raise RuntimeError("cannot embed poison")
        return [item.upper() for item in items]


async def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    run = Recorder(delay_s=0.02)
    limits = BatchLimits(max_items=8, max_cost=1000, max_wait_s=0.05)
    async with MicroBatcher(run, limits, cost=len, pool="t") as batcher:
        answers = await asyncio.gather(*(batcher.submit([f"r{r}a", f"r{r}b"]) for r in range(10)))
    assert answers == [[f"R{r}A", f"R{r}B"] for r in range(10)]
    assert max(len(b) for b in run.batches) == 8  # full batches
    assert len(run.batches) < 10  # fewer model calls than requests
    assert all(name.startswith("model-t") for name in run.threads)  # off the event loop


async def test_a_lone_item_waits_at_most_max_wait() -> None:
    run = Recorder()
    async with MicroBatcher(run, BatchLimits(64, 10_000, 0.05), cost=len, pool="t") as batcher:
        started = time.monotonic()
        assert await batcher.submit(["solo"]) == ["SOLO"]
        waited = time.monotonic() - started
    assert 0.04 <= waited < 1.0
    assert run.batches == [["solo"]]


async def test_a_full_batch_does_not_wait() -> None:
    run = Recorder()
    async with MicroBatcher(run, BatchLimits(4, 10_000, 5.0), cost=len, pool="t") as batcher:
        started = time.monotonic()
        await batcher.submit(["a", "b", "c", "d"])
        assert time.monotonic() - started < 1.0


async def test_a_failing_item_fails_its_request_not_its_batch_mates() -> None:
    run = Recorder()
    async with MicroBatcher(run, BatchLimits(16, 10_000, 0.05), cost=len, pool="t") as batcher:
        good = asyncio.gather(batcher.submit(["x", "y"]), batcher.submit(["z"]))
        bad = batcher.submit(["w", "poison"])
        results = await asyncio.gather(good, bad, return_exceptions=True)
    assert list(results[0]) == [["X", "Y"], ["Z"]]  # type: ignore[arg-type]
    assert isinstance(results[1], RuntimeError)
    assert ["poison"] in run.batches  # isolated down to the single bad item


async def test_cost_limit_splits_batches() -> None:
    run = Recorder()
    limits = BatchLimits(max_items=100, max_cost=10, max_wait_s=0.02)
    async with MicroBatcher(run, limits, cost=len, pool="t") as batcher:
        await batcher.submit(["aaaa", "bbbb", "cccc", "dddd"])
    assert all(sum(len(i) for i in b) <= 10 for b in run.batches)
    assert [i for b in run.batches for i in b] == ["aaaa", "bbbb", "cccc", "dddd"]  # in order


async def test_a_cancelled_caller_is_skipped() -> None:
    run = Recorder(delay_s=0.05)
    async with MicroBatcher(run, BatchLimits(1, 10_000, 0.0), cost=len, pool="t") as batcher:
        first = asyncio.create_task(batcher.submit(["first"]))
        await asyncio.sleep(0.01)  # "first" is running
        doomed = asyncio.create_task(batcher.submit(["doomed"]))
        await asyncio.sleep(0)
        doomed.cancel()
        assert await first == ["FIRST"]
        assert await batcher.submit(["after"]) == ["AFTER"]
    assert ["doomed"] not in run.batches


def _double(items: list[int]) -> list[int]:
    return [i * 2 for i in items]


async def test_a_model_process_takes_two_batches_and_answers_each_caller() -> None:
    """The model in a process of its own (as the embeddings pool runs it): a module-level
    `run` crosses as a pickle, two batches are in flight, every caller gets its own."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    process = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        async with MicroBatcher[int, int](
            _double,
            BatchLimits(4, 100, 0.005),
            cost=lambda _: 1,
            pool="test-process",
            executor=process,
            in_flight=2,
        ) as batcher:
            answers = await asyncio.gather(*(batcher.submit([i, i + 1]) for i in range(20)))
    finally:
        process.shutdown(wait=True)
    assert answers == [[2 * i, 2 * i + 2] for i in range(20)]


async def test_a_call_that_cannot_reach_the_model_fails_its_callers() -> None:
    """What goes wrong around the model (a batch that will not pickle) fails the callers
    of that batch instead of leaving them waiting."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    process = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        async with MicroBatcher[object, object](
            _double,  # type: ignore[arg-type]
            BatchLimits(4, 100, 0.005),
            cost=lambda _: 1,
            pool="test-unpicklable",
            executor=process,
        ) as batcher:
            with pytest.raises(Exception, match="pickle"):
                await asyncio.wait_for(batcher.submit([lambda: 1]), 30)
            assert await batcher.submit([3]) == [6]  # and the next batch still runs
    finally:
        process.shutdown(wait=True)
