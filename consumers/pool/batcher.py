"""The micro-batcher the local pools share: items from many requests, few model calls.

Items queue up; a batch runs when it is full (items or cost, e.g. tokens or pixels) or when
its oldest item has waited `max_wait_s`. One model call runs at a time, on one worker thread
off the event loop, so the Kafka poll loop never stalls and the next batch fills while the
current one runs. A batch whose call raises is split in halves until the failing item is
alone: one bad item fails its own request, never its batch-mates.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aibroker.errors import ProviderUnavailable
from aibroker.runtime.service import exit_now
from aibroker.telemetry import metrics

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class BatchLimits:
    max_items: int
    max_cost: int
    """An item costing more than this still runs, alone."""
    max_wait_s: float


@dataclass
class _Pending(Generic[T, R]):
    item: T
    cost: int
    future: asyncio.Future[R]
    queued_at: float = field(default_factory=time.monotonic)


def model_thread(pool: str) -> ThreadPoolExecutor:
    """The single thread a pool loads and runs its model on."""
    return ThreadPoolExecutor(1, thread_name_prefix=f"model-{pool}")


def take_batch(costs: Sequence[int], limits: BatchLimits) -> int:
    """How many of the queued items (oldest first, by cost) the next batch takes: at least
    one, then as many as fit both limits."""
    taken, total = 0, 0
    for cost in costs:
        if taken >= limits.max_items or (taken and total + cost > limits.max_cost):
            break
        taken, total = taken + 1, total + cost
    return taken


def run_isolated(run: Callable[[list[T]], Sequence[R]], items: list[T]) -> list[R | Exception]:
    """`run(items)`; if it raises, the halves separately, down to single items, so that the
    failing items get their exception and the others their result."""
    try:
        results = list(run(items))
    except Exception as exc:
        if len(items) == 1:
            return [exc]
        mid = len(items) // 2
        return run_isolated(run, items[:mid]) + run_isolated(run, items[mid:])
    if len(results) != len(items):
        raise RuntimeError(f"model call returned {len(results)} results for {len(items)} items")
    return list(results)


def timed_run(
    run: Callable[[list[T]], Sequence[R]], items: list[T]
) -> tuple[list[R | Exception], float]:
    """`run_isolated`, and how long the model took (timed where it runs, so a batch queued
    behind another is not counted as model time)."""
    started = time.monotonic()
    results = run_isolated(run, items)
    return results, time.monotonic() - started


class MicroBatcher(Generic[T, R]):
    """`async with MicroBatcher(run, limits, cost=..., pool=...) as b: await b.submit(items)`."""

    def __init__(
        self,
        run: Callable[[list[T]], Sequence[R]],
        limits: BatchLimits,
        *,
        cost: Callable[[T], int],
        pool: str,
        executor: Executor | None = None,
        in_flight: int = 1,
    ) -> None:
        """`executor`: the one thread (or process) that runs the model (give the one that
        loaded it: torch keeps a thread pool per calling thread, and two pools on the same
        cores slow each other down); by default a thread of the batcher's own. With a
        process, `run` must pickle: a module-level function (or a partial of one).
        `in_flight`: batches handed to the executor at once; 2 keeps a model process busy
        while this loop turns the last batch's results around (it queues the next)."""
        self._run = run
        self._limits = limits
        self._cost = cost
        self._pool = pool
        self._queue: deque[_Pending[T, R]] = deque()
        self._queued_cost = 0
        self._arrived = asyncio.Event()
        self._own_executor = executor is None
        self._executor = executor or model_thread(pool)
        self._loop: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(in_flight)
        self._running: set[asyncio.Task[None]] = set()
        self._metrics = (
            metrics.BATCH_ITEMS.labels(pool),
            metrics.BATCH_FILL.labels(pool),
            metrics.BATCH_WAIT_SECONDS.labels(pool),
            metrics.MODEL_CALL_SECONDS.labels(pool),
        )

    def start(self) -> None:
        """Begin collecting batches (what `async with` does on entry)."""
        self._loop = asyncio.create_task(self._collect(), name=f"batcher-{self._pool}")

    async def aclose(self) -> None:
        """Callers drain first (the worker waits for in-flight requests); what is left fails."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        await asyncio.gather(*self._running, return_exceptions=True)
        for pending in self._queue:
            pending.future.cancel()
        if self._own_executor:
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> MicroBatcher[T, R]:
        self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def submit(self, items: Sequence[T]) -> list[R]:
        """The results of `items`, in order. If any item failed, its exception is raised once
        every item of the call is done (so nothing keeps running for a failed request)."""
        loop = asyncio.get_running_loop()
        pending = [_Pending[T, R](item, self._cost(item), loop.create_future()) for item in items]
        self._queue.extend(pending)
        self._queued_cost += sum(p.cost for p in pending)
        self._arrived.set()
        outcomes = await asyncio.gather(*(p.future for p in pending), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return outcomes  # type: ignore[return-value]  # no exceptions left, so list[R]

    async def _collect(self) -> None:
        while True:
            await self._slots.acquire()  # items keep arriving meanwhile: fuller batches
            await self._wait_for_batch()
            count = take_batch([p.cost for p in self._queue], self._limits)
            batch = [self._queue.popleft() for _ in range(count)]
            self._queued_cost -= sum(p.cost for p in batch)
            if self._queue:
                self._arrived.set()
            else:
                self._arrived.clear()
            live = [p for p in batch if not p.future.done()]  # a cancelled caller's are skipped
            if not live:
                self._slots.release()
                continue
            self._observe(live)
            task = asyncio.create_task(self._call(live))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _call(self, live: list[_Pending[T, R]]) -> None:
        """One model call on the executor; each caller gets its result or its exception."""
        loop = asyncio.get_running_loop()
        try:
            results, seconds = await loop.run_in_executor(
                self._executor, timed_run, self._run, [p.item for p in live]
            )
        except BrokenExecutor:  # the model's process died (killed for memory, a crash)
            for pending in live:
                pending.future.set_exception(ProviderUnavailable("The model process died."))
            exit_now(f"the model process of {self._pool} died")
            raise
        except Exception as exc:  # the call itself failed (a batch that would not pickle)
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        finally:
            self._slots.release()
        self._metrics[3].observe(seconds)
        for pending, result in zip(live, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, Exception):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)

    async def _wait_for_batch(self) -> None:
        """Until the queue holds a full batch, or its oldest item has waited long enough."""
        await self._arrived.wait()
        limits = self._limits
        while True:
            waited = time.monotonic() - self._queue[0].queued_at
            full = len(self._queue) >= limits.max_items or self._queued_cost >= limits.max_cost
            if full or waited >= limits.max_wait_s:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), limits.max_wait_s - waited)
            except TimeoutError:
                return

    def _observe(self, batch: list[_Pending[T, R]]) -> None:
        items, fill, wait, _ = self._metrics
        now = time.monotonic()
        items.observe(len(batch))
        cost = sum(p.cost for p in batch)
        fill.observe(
            min(1.0, max(len(batch) / self._limits.max_items, cost / self._limits.max_cost))
        )
        for pending in batch:
            wait.observe(now - pending.queued_at)
