"""Ingress's cache lookup on real Redis and Kafka: a hit is found under the alias's first
target only when the policy says look it up, and recorded on `results` and `usage` as the
dispatcher records one; Redis down or hung is a quick miss."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import orjson
import pytest
from aiokafka.structs import TopicPartition

from aibroker.kafka.clients import make_consumer, running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.rules.cache_key import cache_key
from aibroker.settings import CacheSettings, Settings
from aibroker.settings.redis import RedisSettings
from aibroker.stores.redis import RedisClient, connect
from aibroker.stores.response_cache import CachedAnswer, RedisResponseCache
from ingress.cache_hits import IngressCache
from schemas.envelopes import CacheDirective, CacheMark, Kind, Mode, Request, Target
from schemas.openai import Usage
from tests.records import read
from tests.redis_loss import lost_redis
from tests.routes import two_providers
from tests.waiting import eventually
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue

pytestmark = pytest.mark.integration

ON = CacheSettings(enabled=True)
FIRST, SECOND = Target(provider="a", model="big"), Target(provider="b", model="large")


def asked(**update: object) -> Request:
    request = Request(
        id=f"req_{uuid.uuid4().hex}",
        tenant=f"t-{uuid.uuid4().hex[:6]}",
        kind=Kind.CHAT,
        model="smart",
        body={"model": "smart", "messages": [{"role": "user", "content": "hi"}], "seed": 1},
        mode=Mode.SYNC,
        reply_to="replies.nobody",
        created_at=time.time(),
    )
    return request.model_copy(update=update)


def answer_from(target: Target) -> CachedAnswer:
    return CachedAnswer(
        response={"id": "chatcmpl-1", "object": "chat.completion", "choices": []},
        usage=Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7),
        cost_usd=Decimal("0.0042"),
        served_by=target,
        stored_at=time.time(),
    )


async def store(redis: RedisClient, request: Request, target: Target) -> None:
    key = cache_key(request.tenant, request.model, request.kind, target, request.body)
    await RedisResponseCache(redis).put(key, answer_from(target), 60)


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[Publisher]:
    names = TopicNames(settings.kafka.topic_prefix)
    await apply_topics(settings.kafka, catalogue(names, [], partitions=1))
    async with running_producer(settings.kafka) as producer:
        yield Publisher(producer, names)


async def test_found_under_the_first_target_only_when_looked_up(
    redis: RedisClient, publisher: Publisher
) -> None:
    cache = IngressCache(RedisResponseCache(redis), publisher, two_providers(), ON)
    request = asked()
    assert await cache.find(request) is None  # nothing stored yet
    await store(redis, request, SECOND)
    assert await cache.find(request) is None  # another target's answer: the dispatcher's to find
    await store(redis, request, FIRST)
    hit = await cache.find(request)
    assert hit is not None
    assert hit.request.target == FIRST
    assert hit.answer.served_by == FIRST
    assert await cache.find(request.model_copy(update={"cache": CacheDirective.NO_CACHE})) is None
    assert await cache.find(request.model_copy(update={"tenant": "someone-else"})) is None
    off = IngressCache(RedisResponseCache(redis), publisher, two_providers(), CacheSettings())
    assert await off.find(request) is None


async def test_a_hit_is_recorded_on_results_and_usage(
    settings: Settings, redis: RedisClient, publisher: Publisher
) -> None:
    cache = IngressCache(RedisResponseCache(redis), publisher, two_providers(), ON)
    request = asked()
    await store(redis, request, FIRST)
    hit = await cache.find(request)
    assert hit is not None
    result = await cache.record(hit)
    assert result.cache is CacheMark.HIT
    assert result.cost_usd == 0
    names = TopicNames(settings.kafka.topic_prefix)
    consumer = make_consumer(settings.kafka, group_id=None)
    await consumer.start()
    try:
        topics = [TopicPartition(names.results, 0), TopicPartition(names.usage, 0)]
        consumer.assign(topics)
        await consumer.seek_to_beginning(*topics)
        got = {r.topic: orjson.loads(r.value or b"") for r in await read(consumer, 2)}
    finally:
        await consumer.stop()
    assert got[names.results]["id"] == request.id
    assert got[names.results]["cache"] == "hit"
    assert got[names.results]["status"] == "succeeded"
    usage = got[names.usage]
    assert (usage["request_id"], usage["cached"]) == (request.id, True)
    assert Decimal(usage["saved_usd"]) == Decimal("0.0042")
    assert Decimal(usage["cost_usd"]) == 0
    assert usage["completion_tokens"] == 4

    async def counted() -> bool:
        rows = (await RedisResponseCache(redis).stats(request.tenant))["data"]
        return bool(rows) and rows[0]["hit"] == 1

    await eventually(counted, what="the hit in the shared counts")


@pytest.mark.parametrize("redis_state", ["down", "hung"])
async def test_redis_down_or_hung_is_a_quick_miss(publisher: Publisher, redis_state: str) -> None:
    async with lost_redis(redis_state) as url, connect(RedisSettings(url=url)) as dead:
        cache = IngressCache(RedisResponseCache(dead), publisher, two_providers(), ON)
        started = time.monotonic()
        found = await cache.find(asked())
        took = time.monotonic() - started
    assert found is None
    assert took < 1.0  # the lookup's own deadline (0.25 s), never the client's timeout
