"""Commands issued in the same turn of the event loop go to Redis as one pipeline.

A worker starts every record of a fetched batch in one turn, so the results sink's
`finish`, the dispatcher's quota scripts and the pools' claims of one batch share a round
trip, a pooled connection and one pass through the guard, with the handlers still written
one record at a time. Callers are grouped by their deadline (`guard.deadline`), so a batch
never runs under a deadline shorter than one of its callers asked for. Each caller gets its
own reply or its own error (a NOSCRIPT reply lets redis-py load the script and retry, as it
does for a lone EVALSHA); a failure of the whole batch reaches every caller in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline

from aibroker.stores.guard import DEADLINE_S, RedisGuard

Queued = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class AutoPipeline:
    """The queue of one client: `send` a command, get its reply."""

    def __init__(
        self, new_pipeline: Callable[[], Pipeline | ClusterPipeline], guard: RedisGuard
    ) -> None:
        self._new_pipeline = new_pipeline
        self._guard = guard
        self._queues: dict[float | None, list[Queued]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def send(self, args: tuple[Any, ...], options: dict[str, Any]) -> Awaitable[Any]:
        limit = DEADLINE_S.get()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queue = self._queues.setdefault(limit, [])
        if not queue:
            asyncio.get_running_loop().call_soon(self._flush, limit)
        queue.append((args, options, future))
        return future

    def _flush(self, limit: float | None) -> None:
        batch = self._queues.pop(limit, [])
        if batch:
            task = asyncio.create_task(self._execute(batch, limit))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _execute(self, batch: list[Queued], limit: float | None) -> None:
        pipe = self._new_pipeline()
        for args, options, _ in batch:
            pipe.execute_command(*args, **options)
        DEADLINE_S.set(limit)  # this task's own context: the batch's callers' deadline
        try:
            replies = await self._guard.run(lambda: pipe.execute(raise_on_error=False))
        except Exception as exc:  # the whole batch failed: every caller gets the failure
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (the process stops): so are its callers
            for _, _, future in batch:
                future.cancel()
            raise
        finally:
            await pipe.reset()  # type: ignore[no-untyped-call]
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller gave up waiting
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
