"""The pool handler on real Kafka and Redis, with engines written for the test (the engine
is the port here; Kafka and Redis are real)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from aibroker.kafka.clients import decode, make_consumer, make_producer
from aibroker.kafka.publisher import Publisher
from aibroker.prices import PriceTable
from aibroker.settings import Settings
from aibroker.stores.breaker import BreakerPolicy, RedisBreakers
from aibroker.stores.claims import RedisClaimStore
from aibroker.stores.redis import RedisClient
from consumers.pool.engine import Completion
from consumers.pool.handler import Pool
from schemas.envelopes import Kind, Request, Result, Status, Target
from tests import records
from tests.records import read
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue

pytestmark = [pytest.mark.integration, pytest.mark.smoke]


class CountingEngine:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.calls = 0
        self.fail_with = fail_with

    def targets(self) -> list[str]:
        return ["p"]

    async def generate(self, request: Request, target: Target) -> Completion:
        self.calls += 1
        if self.fail_with:
            raise self.fail_with
        return Completion({"echo": request.body}, None)

    async def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        yield (await self.generate(request, target)).response

    async def check_health(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def names(settings: Settings) -> TopicNames:
    names = TopicNames(settings.kafka.topic_prefix)
    await apply_topics(settings.kafka, catalogue(names, [names.dispatch("p")], partitions=1))
    return names


@pytest.fixture
async def listen(settings: Settings, names: TopicNames) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = make_consumer(settings.kafka, names.results, names.dlq, group_id=None)
    await consumer.start()
    yield consumer
    await consumer.stop()


def request() -> Request:
    return Request(
        id=f"req_{uuid.uuid4().hex}",
        tenant="t",
        kind=Kind.CHAT,
        model="p/m",
        body={"n": 1},
        target=Target(provider="p", model="m"),
        created_at=time.time(),
    )


def record(req: Request, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return records.record(req, req.id, offset=offset)


BREAKERS = BreakerPolicy(
    window_s=30, min_calls=10, failure_rate=0.5, cooldown_s=15, probe_timeout_s=5
)


@pytest.fixture
async def make_pool(
    settings: Settings, names: TopicNames, redis: RedisClient
) -> AsyncIterator[Callable[..., Pool]]:
    """A factory of pools on real Kafka and Redis around a given engine (arq-style)."""
    producer = make_producer(settings.kafka)
    await producer.start()

    def factory(engine: CountingEngine, lease_s: float = 5.0) -> Pool:
        claims = RedisClaimStore(redis, lease_s=lease_s, done_ttl_s=60)
        return Pool(
            engine,
            Publisher(producer, names),
            claims,
            PriceTable({}),
            RedisBreakers(redis, BREAKERS, "t."),
            owner="o1",
            lease_s=lease_s,
        )

    yield factory
    await producer.stop()


async def test_a_finished_attempt_redelivered_is_not_redone(
    make_pool: Callable[..., Pool], names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    engine = CountingEngine()
    pool = make_pool(engine)
    req = request()
    await pool.on_request(record(req))
    await pool.on_request(record(req))  # the same record again, as after a crash
    assert engine.calls == 1
    results = [decode(Result, r.value) for r in await read(listen, 1) if r.topic == names.results]
    assert [(r.id, r.status) for r in results] == [(req.id, Status.SUCCEEDED)]


async def test_an_engine_bug_still_ends_the_request_and_keeps_it_in_the_dlq(
    make_pool: Callable[..., Pool], names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    req = request()
    await make_pool(CountingEngine(fail_with=RuntimeError("boom"))).on_request(record(req))
    by_topic = {r.topic: r for r in await read(listen, 2)}
    result = decode(Result, by_topic[names.results].value)
    assert result.status is Status.FAILED
    assert result.error is not None
    assert result.error.http_status == 500
    assert result.error.type == "server_error"
    dead = by_topic[names.dlq]
    assert decode(Request, dead.value).id == req.id
    assert dict(dead.headers)["aib-dlq-reason"] == b"RuntimeError: boom"


async def test_a_live_claim_elsewhere_is_waited_out(
    make_pool: Callable[..., Pool], redis: RedisClient
) -> None:
    engine = CountingEngine()
    pool = make_pool(engine, lease_s=0.4)
    req = request()
    await RedisClaimStore(redis, lease_s=0.4, done_ttl_s=60).acquire(
        req.id, 1, "crashed-owner", "t"
    )
    started = time.monotonic()
    await asyncio.wait_for(pool.on_request(record(req)), 10)
    assert time.monotonic() - started >= 0.3  # it waited for the crashed owner's lease to lapse
    assert engine.calls == 1
