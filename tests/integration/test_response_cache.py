"""The response cache's store and its dispatcher front on real Redis: what is stored and what
never is, the TTL, the single-flight lock, and Redis down or hung as a quick miss."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from aibroker.kafka.clients import running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.limits import Limits
from aibroker.settings import CacheSettings, Settings
from aibroker.settings.redis import RedisSettings
from aibroker.stores.cache import TtlCache
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.quota import RedisQuota
from aibroker.stores.redis import RedisClient, connect
from aibroker.stores.response_cache import CachedAnswer, RedisResponseCache, release, remember
from aibroker.stores.results import RedisRequestStore
from aibroker.stores.tenants import RedisTenantStore
from consumers.results.sink import ResultsSink
from dispatcher.cache import CacheFront
from schemas.envelopes import CacheEntry, CacheMark, ErrorInfo, Kind, Request, Status, Target
from schemas.openai import Usage
from schemas.terminal import terminal
from tests.records import record
from tests.redis_loss import lost_redis
from tests.waiting import eventually
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue

pytestmark = pytest.mark.integration

TARGET = Target(provider="mock", model="echo")
ON = CacheSettings(enabled=True)


def routed(**body: object) -> Request:
    return Request(
        id=f"req_{uuid.uuid4().hex}",
        tenant=f"t-{uuid.uuid4().hex[:6]}",
        kind=Kind.CHAT,
        model="mock/echo",
        body={"model": "mock/echo", "messages": [], "temperature": 0, **body},
        target=TARGET,
        created_at=time.time(),
    )


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[Publisher]:
    """A publisher on the test's own topics (a hit writes `results` and `usage`)."""
    names = TopicNames(settings.kafka.topic_prefix)
    await apply_topics(settings.kafka, catalogue(names, [], partitions=1))
    async with running_producer(settings.kafka) as producer:
        yield Publisher(producer, names)


async def test_only_a_success_is_stored_and_it_expires(redis: RedisClient) -> None:
    cache = RedisResponseCache(redis)
    request = routed().model_copy(
        update={"cache_entry": CacheEntry(key=f"aib:rc:t:{uuid.uuid4().hex}", ttl_s=1)}
    )
    assert request.cache_entry is not None
    key = request.cache_entry.key
    for status in (Status.FAILED, Status.CANCELLED, Status.EXPIRED):
        error = ErrorInfo(message="no", type="server_error")
        await remember(cache, request, terminal(request, status, error=error), 1.0)
        assert await cache.get(key) is None
    done = terminal(request, Status.SUCCEEDED, response={"id": "chatcmpl-1", "choices": []})
    done.cost_usd = Decimal("0.002")
    await remember(cache, request, done, 1.0)
    found = await cache.get(key)
    assert found is not None
    assert found.response["id"] == "chatcmpl-1"
    assert found.cost_usd == Decimal("0.002")

    async def gone() -> bool:
        return await cache.get(key) is None

    await eventually(gone, what="the entry expired at its TTL", timeout_s=5)


async def test_a_miss_takes_the_lock_and_a_waiter_gets_the_answer(
    redis: RedisClient, publisher: Publisher
) -> None:
    front = CacheFront(RedisResponseCache(redis), publisher, ON)
    leader = await front.serve(routed(seed=1))
    assert leader is not None
    assert leader.cache_mark is CacheMark.MISS
    assert leader.cache_entry is not None
    assert leader.cache_entry.lock == leader.id
    twin = leader.model_copy(update={"id": f"req_{uuid.uuid4().hex}", "cache_entry": None})
    twin = twin.model_copy(update={"cache_mark": None})
    waiting = asyncio.ensure_future(front.serve(twin))
    await asyncio.sleep(0)  # the twin is parked on the lock, not answered
    assert not waiting.done()
    answer = terminal(leader, Status.SUCCEEDED, response={"id": "chatcmpl-9", "choices": []})
    await remember(front.store, leader, answer, 1.0)
    await release(front.store, leader, 1.0)
    assert await asyncio.wait_for(waiting, 5) is None  # answered from the leader's result


async def test_a_lost_leader_strands_no_one(redis: RedisClient, publisher: Publisher) -> None:
    front = CacheFront(
        RedisResponseCache(redis), publisher, ON.model_copy(update={"lock_lease_s": 0.5})
    )
    leader = await front.serve(routed())
    assert leader is not None
    twin = routed().model_copy(update={"tenant": leader.tenant, "body": leader.body})
    started = time.monotonic()
    went_on = await front.serve(twin)  # the leader never answers: the twin takes over
    assert went_on is not None
    assert went_on.cache_mark is CacheMark.MISS
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("redis_state", ["down", "hung"])
async def test_redis_down_or_hung_is_a_quick_miss(publisher: Publisher, redis_state: str) -> None:
    async with lost_redis(redis_state) as url, connect(RedisSettings(url=url)) as dead:
        front = CacheFront(RedisResponseCache(dead), publisher, ON)
        started = time.monotonic()
        served = await front.serve(routed())
        took = time.monotonic() - started
    assert served is not None
    assert served.cache_mark is CacheMark.MISS
    assert took < 1.5  # the lookup deadline (0.25 s) and the count's, never the call timeout


async def test_cached_answer_round_trips(redis: RedisClient) -> None:
    cache = RedisResponseCache(redis)
    key = f"aib:rc:t:{uuid.uuid4().hex}"
    answer = CachedAnswer(response={"a": 1}, served_by=TARGET, stored_at=time.time())
    await cache.put(key, answer, 60)
    assert await cache.get(key) == answer


@pytest.mark.parametrize(
    ("mark", "refunded"),
    [(CacheMark.HIT, True), (CacheMark.SEMANTIC, True), (CacheMark.MISS, False)],
)
async def test_a_hit_is_not_charged_tokens(
    redis: RedisClient, publisher: Publisher, mark: CacheMark, refunded: bool
) -> None:
    """Admission set 100 tokens aside; the answer reports 60. A miss is charged its 60 (40
    come back), a hit nothing (all 100 come back, so another 100 fit at once)."""
    quota = RedisQuota(redis, lease_s=60)
    sink = ResultsSink(
        RedisRequestStore(redis, 60), quota, TtlCache(RedisTenantStore(redis).get, 0.0), publisher
    )
    request = routed()
    scopes = [(quota_scope(request.tenant), Limits(tpm=100))]
    assert (await quota.admit(request.id, request.tenant, scopes, 100, time.time())).admitted
    done = terminal(request, Status.SUCCEEDED, response={"id": "chatcmpl-1", "choices": []})
    done.usage = Usage(prompt_tokens=20, completion_tokens=40, total_tokens=60)
    done.cache = mark
    await sink.on_result(record(done, done.id))
    again = await quota.admit("req_next", request.tenant, scopes, 100, time.time())
    assert again.admitted is refunded
