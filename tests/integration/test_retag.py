"""`aibroker redis-retag` on a real Redis: keys an older release wrote, without hash tags, are
found under their new names, and the new code goes on from them (a request admitted before the
upgrade is settled after it; its result is still read)."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from aibroker.stores.batches import RedisBatchStore
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.quota import RedisQuota, month
from aibroker.stores.redis import RedisClient, is_cluster
from aibroker.stores.results import RedisRequestStore
from aibroker.stores.retag import retag

pytestmark = pytest.mark.integration


async def test_old_keys_move_and_the_new_code_goes_on_from_them(redis: RedisClient) -> None:
    if is_cluster(redis):
        pytest.skip("an older release never ran on a cluster: there is nothing to move")
    tenant, key_id = f"t-{uuid.uuid4().hex[:8]}", f"key_{uuid.uuid4().hex}"
    request_id = f"req_{uuid.uuid4().hex}"
    batch_id = f"batch_{uuid.uuid4().hex}"
    now = time.time()
    old = {  # as the release before the hash tags wrote them
        f"aib:keyid:{key_id}": {"tenant": tenant},
        f"aib:req:{request_id}": {"status": "running", "tenant": tenant},
        f"aib:q:adm:{request_id}": {"est": "10", "scopes": f"aib:q:t:{tenant} aib:q:k:{key_id}"},
    }
    for name, fields in old.items():
        await redis.hset(name, mapping=fields)  # type: ignore[arg-type]
    await redis.set(f"aib:claim:{request_id}:0", "pool-1")
    await redis.zadd(f"aib:q:t:{tenant}:conc", {request_id: now + 60})
    await redis.zadd(f"aib:q:k:{key_id}:conc", {request_id: now + 60})
    await redis.set(f"aib:q:t:{tenant}:spend:{month(now)}", 5_000_000_000)
    await redis.hset(f"aib:batch:{batch_id}:lines", "a", "1{}")

    moved, left = await retag(redis)
    assert (moved, left) == (7, 0)  # all but the key's record, which keeps its name
    assert await retag(redis) == (0, 0)  # a second run finds nothing

    quota = RedisQuota(redis, lease_s=60)
    assert await quota.in_flight(quota_scope(tenant), now) == 1
    assert await quota.in_flight(quota_scope(tenant, key_id), now) == 1
    assert await quota.settle(request_id, tenant, 10, Decimal("1"), now)
    assert await quota.in_flight(quota_scope(tenant), now) == 0
    assert await quota.in_flight(quota_scope(tenant, key_id), now) == 0
    assert await quota.spend(quota_scope(tenant), now) == Decimal("6")  # the month goes on
    assert await quota.spend(quota_scope(tenant, key_id), now) == Decimal("1")
    state = await RedisRequestStore(redis, 60).get(request_id)
    assert state is not None
    assert (state.tenant, state.status.value) == (tenant, "running")
    assert await RedisBatchStore(redis, 60).unrecorded(batch_id) == []
    assert (await RedisBatchStore(redis, 60).lines(batch_id))[0] == [b"{}"]
