"""Request state, claims and API keys on a real RedisClient."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from aibroker.stores.claims import Claim, RedisClaimStore
from aibroker.stores.keys import CachedKeys, RedisKeyStore, hash_key
from aibroker.stores.keyspace import request_key
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import DONE_CHANNEL, RedisRequestStore
from schemas.envelopes import Result, Status

pytestmark = pytest.mark.integration


def rid() -> str:
    return f"req_{uuid.uuid4().hex}"


def result(request_id: str, status: Status = Status.SUCCEEDED, text: str = "a") -> Result:
    return Result(
        id=request_id, tenant="t1", status=status, response={"text": text}, finished_at=time.time()
    )


async def test_first_terminal_result_wins_and_is_announced(redis: RedisClient) -> None:
    store = RedisRequestStore(redis, ttl_s=60)
    request_id = rid()
    async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(DONE_CHANNEL)
        assert await store.advance(request_id, "t1", Status.QUEUED)
        assert await store.finish(result(request_id, text="first"))
        assert not await store.finish(result(request_id, Status.FAILED, text="second"))
        announced: list[str] = []
        deadline = time.monotonic() + 5
        while not announced and time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=1)
            if message is not None:
                announced.append(message["data"])
        assert announced == [request_id]
    state = await store.get(request_id)
    assert state is not None
    assert state.status is Status.SUCCEEDED
    assert state.tenant == "t1"
    assert state.result is not None
    assert state.result.response == {"text": "first"}
    assert 0 < await redis.ttl(request_key("res", request_id)) <= 60


async def test_a_late_status_never_overwrites_a_terminal_one(redis: RedisClient) -> None:
    store = RedisRequestStore(redis, ttl_s=60)
    request_id = rid()
    await store.finish(result(request_id))
    assert not await store.advance(request_id, "t1", Status.RUNNING)
    state = await store.get(request_id)
    assert state is not None
    assert state.status is Status.SUCCEEDED


async def test_unknown_request_has_no_state(redis: RedisClient) -> None:
    assert await RedisRequestStore(redis, ttl_s=60).get(rid()) is None


async def test_claims_one_owner_per_attempt(redis: RedisClient) -> None:
    claims = RedisClaimStore(redis, lease_s=0.5, done_ttl_s=60)
    request_id = rid()
    assert await claims.acquire(request_id, 1, "a", "t1") is Claim.ACQUIRED
    assert await claims.acquire(request_id, 1, "b", "t1") is Claim.BUSY
    assert await claims.acquire(request_id, 1, "a", "t1") is Claim.ACQUIRED  # re-entrant
    assert await claims.acquire(request_id, 2, "b", "t1") is Claim.ACQUIRED  # a retry is new work
    await claims.mark_done(request_id, 1)
    assert await claims.acquire(request_id, 1, "b", "t1") is Claim.DONE


async def test_acquiring_marks_the_request_running_unless_it_ended(redis: RedisClient) -> None:
    claims = RedisClaimStore(redis, lease_s=5, done_ttl_s=60)
    store = RedisRequestStore(redis, ttl_s=60)
    running, ended = rid(), rid()
    await store.advance(running, "t1", Status.QUEUED)
    await store.finish(result(ended))
    assert await claims.acquire(running, 1, "a", "t1") is Claim.ACQUIRED
    assert await claims.acquire(ended, 1, "a", "t1") is Claim.ACQUIRED
    assert (await store.get(running)).status is Status.RUNNING  # type: ignore[union-attr]
    assert (await store.get(ended)).status is Status.SUCCEEDED  # type: ignore[union-attr]


async def test_a_lapsed_lease_can_be_taken_over(redis: RedisClient) -> None:
    claims = RedisClaimStore(redis, lease_s=0.2, done_ttl_s=60)
    request_id = rid()
    assert await claims.acquire(request_id, 1, "dead", "t1") is Claim.ACQUIRED
    await asyncio.sleep(0.3)
    assert await claims.acquire(request_id, 1, "alive", "t1") is Claim.ACQUIRED
    assert not await claims.renew(request_id, 1, "dead")
    await claims.release(request_id, 1, "dead")  # not the owner: no effect
    assert await claims.acquire(request_id, 1, "third", "t1") is Claim.BUSY


async def test_keys_are_stored_hashed_and_looked_up(redis: RedisClient) -> None:
    keys = RedisKeyStore(redis)
    plaintext, info = await keys.add(f"tenant-{uuid.uuid4().hex[:6]}")
    assert plaintext.startswith("aib_")
    assert info.prefix == plaintext[:10]
    stored = await redis.hgetall(f"aib:key:{hash_key(plaintext)}")
    assert plaintext not in str(stored)
    assert await keys.lookup(plaintext) == info
    assert await keys.lookup("aib_wrong") is None
    with pytest.raises(ValueError, match="aib_"):
        await keys.add("t", "sk-not-ours")


async def test_cached_keys_survive_a_redis_outage(redis: RedisClient) -> None:
    plaintext, info = await RedisKeyStore(redis).add("t-cache")
    store = RedisKeyStore(redis)
    cached = CachedKeys(store, ttl_s=0.0)  # always stale: every lookup refreshes it
    assert await cached.lookup(plaintext) == info
    dead = Redis.from_url(
        "redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=0.5
    )
    try:
        store._redis = dead  # the same cache, now with RedisClient unreachable
        assert await cached.lookup(plaintext) == info
        with pytest.raises(RedisConnectionError):
            await cached.lookup("aib_never_seen")
    finally:
        await dead.aclose()


async def test_adding_an_existing_key_is_idempotent(redis: RedisClient) -> None:
    keys = RedisKeyStore(redis)
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    fixed = f"aib_fixed_{uuid.uuid4().hex}"
    _, first = await keys.add(tenant, fixed)
    _, again = await keys.add(tenant, fixed)
    assert first == again
    assert [r.key_id for r in await keys.list(tenant)] == [first.key_id]
    with pytest.raises(ValueError, match="another tenant"):
        await keys.add("someone-else", fixed)
