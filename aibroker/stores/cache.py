"""A small in-process read-through cache with a TTL, shared by key, tenant and limit lookups."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from redis.exceptions import RedisError

V = TypeVar("V")


class TtlCache(Generic[V]):
    """`get(name)` answers from memory for `ttl_s`, then asks `load` again.

    Concurrent misses of one name share a single load. While the backing store (Redis) is
    unreachable, a value seen before keeps being served: the hot path keeps working.
    """

    def __init__(self, load: Callable[[str], Awaitable[V]], ttl_s: float, size: int = 100_000):
        self._load = load
        self._ttl_s = ttl_s
        self._size = size
        self._values: dict[str, tuple[float, V]] = {}
        self._pending: dict[str, asyncio.Future[V]] = {}

    async def get(self, name: str) -> V:
        cached = self._values.get(name)
        if cached and time.monotonic() - cached[0] < self._ttl_s:
            return cached[1]
        pending = self._pending.get(name)
        if pending is None:
            pending = asyncio.ensure_future(self._refresh(name, cached))
            self._pending[name] = pending
            pending.add_done_callback(lambda _: self._pending.pop(name, None))
        return await asyncio.shield(pending)

    def forget(self, name: str) -> None:
        self._values.pop(name, None)

    async def _refresh(self, name: str, cached: tuple[float, V] | None) -> V:
        try:
            value = await self._load(name)
        except RedisError:
            if cached:
                return cached[1]
            raise
        if len(self._values) >= self._size:
            self._values.clear()
        self._values[name] = (time.monotonic(), value)
        return value
