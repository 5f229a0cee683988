"""The key/tenant cache never makes a request wait on the store for a name it has seen: a
stale value is served while it is refreshed in the background; only a new name waits."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from aibroker.stores.cache import TtlCache

pytestmark = pytest.mark.unit


class Store:
    def __init__(self) -> None:
        self.value = "v1"
        self.loads = 0
        self.gate: asyncio.Event | None = None
        self.down = False

    async def load(self, name: str) -> str:
        self.loads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise RedisConnectionError("down")
        return f"{name}:{self.value}"


async def test_a_stale_value_is_served_at_once_and_refreshed_behind() -> None:
    store = Store()
    cache: TtlCache[str] = TtlCache(store.load, ttl_s=0.0)
    assert await cache.get("k") == "k:v1"
    store.value, store.gate = "v2", asyncio.Event()  # the store is now slow
    assert await asyncio.wait_for(cache.get("k"), 0.1) == "k:v1"  # did not wait
    assert await asyncio.wait_for(cache.get("k"), 0.1) == "k:v1"
    assert store.loads == 2  # one refresh in flight, shared
    store.gate.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert await cache.get("k") == "k:v2"


async def test_a_new_name_waits_and_a_failing_store_keeps_the_last_value() -> None:
    store = Store()
    cache: TtlCache[str] = TtlCache(store.load, ttl_s=0.0)
    assert await cache.get("k") == "k:v1"
    store.down = True
    for _ in range(3):
        assert await cache.get("k") == "k:v1"
        await asyncio.sleep(0)
    with pytest.raises(RedisConnectionError):
        await cache.get("never-seen")


async def test_a_fresh_value_is_not_reloaded() -> None:
    store = Store()
    cache: TtlCache[str] = TtlCache(store.load, ttl_s=60.0)
    await cache.get("k")
    await cache.get("k")
    assert store.loads == 1
