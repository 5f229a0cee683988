"""The semantic cache degraded (`dispatcher/semantic.py`): an embedding that never comes, a
Qdrant that refuses connections and a Redis that refuses them each make the lookup a plain
miss within its budget, never an error and never a longer wait. Qdrant's local mode (in this
process) is the index where one is needed; the dead ones are real clients of closed ports."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from aibroker.settings import CacheSettings
from aibroker.stores.response_cache import RedisResponseCache
from aibroker.stores.semantic_cache import collection_name
from dispatcher.semantic import SemanticCache
from dispatcher.semantic_key import context_hash
from schemas.envelopes import Kind, Request, Target

qdrant_index = pytest.importorskip("aibroker.stores.qdrant_index", reason="needs qdrant-client")

pytestmark = pytest.mark.unit

BUDGET_S = 0.3
SETTINGS = CacheSettings(
    enabled=True,
    semantic_tenants=["acme"],
    semantic_timeout_s=BUDGET_S,
    lookup_timeout_s=0.2,
)
TARGET = Target(provider="mock", model="echo")
CLOSED = "127.0.0.1:1"
"""Nothing listens on port 1: a connection there is refused at once."""


class Hanging:
    """An embeddings pool that never answers."""

    async def embed(self, caller: Request, text: str, until: float) -> list[float] | None:
        await asyncio.sleep(3600)
        return None


class Fixed:
    """An embeddings pool that answers every text with one vector."""

    async def embed(self, caller: Request, text: str, until: float) -> list[float] | None:
        return [1.0, 0.0, 0.0]


def request(text: str) -> Request:
    body: dict[str, Any] = {
        "model": "mock/echo",
        "messages": [{"role": "user", "content": text}],
        "temperature": 0,
    }
    return Request(
        id="req_1",
        tenant="acme",
        kind=Kind.CHAT,
        model="mock/echo",
        body=body,
        target=TARGET,
        created_at=time.time(),
    )


def dead_redis() -> RedisResponseCache:
    host, port = CLOSED.split(":")
    return RedisResponseCache(Redis(host=host, port=int(port), socket_connect_timeout=0.2))


async def timed(cache: SemanticCache, key: str) -> tuple[object, float]:
    started = time.monotonic()
    found = await cache.find(request("How do I reset my password?"), key, 60, search=True)
    return found, time.monotonic() - started


async def test_an_embedding_that_never_comes_is_a_miss_within_the_budget() -> None:
    index = qdrant_index.QdrantIndex.connect(":memory:")
    cache = SemanticCache(index, Hanging(), dead_redis(), SETTINGS)
    found, took = await timed(cache, "aib:rc:acme:m:1")
    assert found is None
    assert BUDGET_S <= took < BUDGET_S + 0.5
    await index.aclose()


async def test_a_qdrant_that_refuses_is_a_miss_at_once() -> None:
    index = qdrant_index.QdrantIndex.connect(f"http://{CLOSED}")
    cache = SemanticCache(index, Fixed(), dead_redis(), SETTINGS)
    found, took = await timed(cache, "aib:rc:acme:m:1")
    assert found is None
    assert took < BUDGET_S * 2 + 0.5  # the lookup's budget, then the store's: never longer
    await index.aclose()


async def test_a_redis_that_refuses_is_a_miss_and_the_point_is_kept() -> None:
    """A neighbour whose answer cannot be read: a miss, and the neighbour is not dropped (its
    answer may well be there; Redis is what failed)."""
    index = qdrant_index.QdrantIndex.connect(":memory:")
    cache = SemanticCache(index, Fixed(), dead_redis(), SETTINGS)
    stored = request("How can I reset my password?")
    assert await cache.find(stored, "aib:rc:acme:m:0", 60, search=False) is None  # a point
    found, took = await timed(cache, "aib:rc:acme:m:1")
    assert found is None
    assert took < BUDGET_S + 0.5
    collection = collection_name("acme", TARGET, SETTINGS.semantic_embedding_model)
    context = context_hash("acme", "mock/echo", Kind.CHAT, TARGET, stored.body)
    near = await index.nearest(collection, [1.0, 0.0, 0.0], context, time.time())
    assert near is not None
    assert near.key == "aib:rc:acme:m:0"
    await index.aclose()
