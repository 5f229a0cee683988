"""A small in-process cache with a TTL, refreshed in the background, shared by key, tenant and
limit lookups."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from redis.exceptions import RedisError

V = TypeVar("V")
log = logging.getLogger(__name__)


class TtlCache(Generic[V]):
    """`get(name)` answers from memory; after `ttl_s` it still answers from memory and asks
    `load` again in the background (stale-while-revalidate), so a request never waits on the
    store for a name it has seen. Only a name never seen waits for `load`; concurrent misses
    of one name share it. While the store (Redis) fails, the last value keeps being served.
    """

    def __init__(self, load: Callable[[str], Awaitable[V]], ttl_s: float, size: int = 100_000):
        self._load = load
        self._ttl_s = ttl_s
        self._size = size
        self._values: dict[str, tuple[float, V]] = {}
        self._pending: dict[str, asyncio.Future[V]] = {}

    async def get(self, name: str) -> V:
        cached = self._values.get(name)
        if cached is None:
            return await asyncio.shield(self._loading(name))
        if time.monotonic() - cached[0] >= self._ttl_s:
            self._loading(name)  # refreshed in the background; this caller has its answer
        return cached[1]

    def forget(self, name: str) -> None:
        self._values.pop(name, None)

    def _loading(self, name: str) -> asyncio.Future[V]:
        pending = self._pending.get(name)
        if pending is None:
            pending = asyncio.ensure_future(self._refresh(name))
            self._pending[name] = pending
            pending.add_done_callback(self._done(name))
        return pending

    def _done(self, name: str) -> Callable[[asyncio.Future[V]], None]:
        def done(future: asyncio.Future[V]) -> None:
            self._pending.pop(name, None)
            failed = None if future.cancelled() else future.exception()
            if isinstance(failed, RedisError):
                log.debug("refreshing %s failed (%r); the last value is served", name, failed)
            elif failed is not None:
                log.warning("refreshing %s failed (%r)", name, failed)

        return done

    async def _refresh(self, name: str) -> V:
        value = await self._load(name)
        if len(self._values) >= self._size:
            self._values.clear()
        self._values[name] = (time.monotonic(), value)
        return value
