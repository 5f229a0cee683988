"""The batch store on real Redis (a cluster too, with `AIBROKER_TEST_REDIS=cluster`): a line's
outcome, its cost and its offload mark are counted with its first record only, however often
the line is recorded again after a redelivery or a re-expansion."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from aibroker.stores.batches import RedisBatchStore
from aibroker.stores.redis import RedisClient
from schemas.batches import Batch, BatchStatus

pytestmark = pytest.mark.integration


async def new_batch(store: RedisBatchStore, custom_ids: list[str]) -> Batch:
    now = int(time.time())
    batch = Batch(
        id=f"batch_{uuid.uuid4().hex}",
        endpoint="/v1/chat/completions",
        input_file_id="file-in",
        completion_window="24h",
        status=BatchStatus.IN_PROGRESS,
        created_at=now,
        in_progress_at=now,
        expires_at=now + 3600,
        tenant=f"t{uuid.uuid4().hex[:10]}",
    )
    await store.create(batch, custom_ids)
    return batch


async def test_offloaded_lines_are_counted_once_each(redis: RedisClient) -> None:
    store = RedisBatchStore(redis, 60)
    batch = await new_batch(store, ["a", "b", "c", "d"])
    half = Decimal("0.000075")
    await store.record(batch.id, "a", True, {"custom_id": "a"}, half, offloaded=True)
    await store.record(batch.id, "a", True, {"custom_id": "a"}, half, offloaded=True)  # again
    await store.record(batch.id, "b", True, {"custom_id": "b"}, half * 2)  # on demand
    await store.record(batch.id, "c", False, {"custom_id": "c"}, offloaded=True)  # failed there
    tally = await store.record(batch.id, "c", True, {"custom_id": "c"}, half, offloaded=True)
    assert (tally.completed, tally.failed, tally.spent_usd) == (2, 1, half * 3)
    got = await store.get(batch.id)
    assert got is not None
    assert got.aibroker_offloaded_lines == 2  # a once, c once (its first record); b on demand
    assert got.aibroker_cost_usd == "0.000225"
    assert got.public()["aibroker_offloaded_lines"] == 2


async def test_a_new_batch_has_no_offloaded_lines(redis: RedisClient) -> None:
    store = RedisBatchStore(redis, 60)
    batch = await new_batch(store, ["a"])
    await store.update(batch.id, metadata={"k": "v"})  # a JSON field, beside the counters
    got = await store.get(batch.id)
    assert got is not None
    assert (got.aibroker_offloaded_lines, got.metadata) == (0, {"k": "v"})
