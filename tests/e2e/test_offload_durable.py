"""The offload pools' state outlives Redis and their own crashes: Redis flushed while a provider
batch is in flight, each line still ends once, and the batch is neither forgotten nor submitted
again (its state is read back from the `offload` topic); a pool SIGKILLed between Anthropic's
batch create and the record of its id submits no line twice (the batch is found at the
provider). Lines come from a direct producer, whose results live in Kafka, not in Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from aibroker.client import KafkaProducer
from aibroker.kafka.clients import connection, decode, make_consumer
from loadtest.stack import Stack
from schemas.envelopes import Kind, Request, Result, Status
from tests.e2e.conftest import running_stack
from tests.e2e.offloading import CLAUDE, MODEL, Offloading, mock_stats, usage_of
from tests.redis_loss import flush, own_redis
from tests.services import KafkaService, RedisService
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisService]:
    with own_redis(tmp_path_factory.mktemp("offload-redis")) as service:
        yield service


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, lost: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        "AIBROKER_OFFLOAD_POLICY": "auto",
        "AIBROKER_OFFLOAD_MAX_AGE_S": "2",
        "AIBROKER_OFFLOAD_POLL_MIN_S": "0.3",
        "AIBROKER_OFFLOAD_POLL_MAX_S": "1",
        "AIBROKER_OFFLOAD_ALIAS_POLICY": json.dumps({CLAUDE: "always"}),
    }
    logs = tmp_path_factory.mktemp("offload-durable")
    with running_stack(kafka, lost, logs, extra_env=env) as s:
        yield s


@pytest.fixture
async def producer(stack: Stack) -> AsyncIterator[KafkaProducer]:
    async with KafkaProducer(
        tenant="tenant-a",
        secret=stack.producer_secret,
        prefix=stack.prefix,
        results=True,
        producer_options={"enable_idempotence": stack.kafka.producer_idempotent},
        **connection(stack.kafka),
    ) as kafka_producer:
        yield kafka_producer


async def send_lines(producer: KafkaProducer, n: int, model: str) -> list[Request]:
    """Batch-lane chat requests, straight onto the requests lane (no deadline: 24 h is left)."""
    return [
        await producer.send(
            Kind.CHAT,
            {"model": model, "messages": [{"role": "user", "content": f"n{i}"}]},
            priority="batch",
        )
        for i in range(n)
    ]


async def each_result(producer: KafkaProducer, sent: list[Request]) -> list[Result]:
    async with asyncio.timeout(120):
        return list(await asyncio.gather(*(producer.result(r.id) for r in sent)))


async def results_on_topic(stack: Stack, ids: set[str]) -> dict[str, int]:
    """How many results of these requests the `results` topic holds, once each has one."""
    consumer = make_consumer(stack.kafka, f"{stack.prefix}results", group_id=None)
    await consumer.start()
    counts: dict[str, int] = {}
    try:

        async def all_there() -> bool:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    result = decode(Result, record.value)
                    if result.id in ids:
                        counts[result.id] = counts.get(result.id, 0) + 1
            return ids <= counts.keys()

        await eventually(all_there, what="a result for every line", timeout_s=60)
        for _ in range(3):  # a second result of a line would have come by now
            await all_there()
    finally:
        await consumer.stop()
    return counts


async def test_redis_flushed_mid_offload_each_line_ends_once(
    stack: Stack,
    lost: RedisService,
    offload: Offloading,
    producer: KafkaProducer,
    knobs: httpx.AsyncClient,
) -> None:
    await knobs.post("/_control/batches", json={"delay_s": 6})
    before = await mock_stats(stack)
    sent = await send_lines(producer, 30, MODEL)

    async def submitted() -> bool:
        return bool((await mock_stats(stack))["lines"] - before["lines"] >= 30)

    await eventually(submitted, what="the provider batch created", timeout_s=90)
    await flush(lost.url)  # the pool's view of its provider batch is gone
    results = await each_result(producer, sent)
    assert {r.status for r in results} == {Status.SUCCEEDED}
    after = await mock_stats(stack)
    assert after["lines"] - before["lines"] == 30  # nothing submitted twice
    assert after["on_demand"] == before["on_demand"]  # nothing sent on demand either
    ids = {r.id for r in sent}
    assert set((await results_on_topic(stack, ids)).values()) == {1}  # each line ended once
    events = await usage_of(stack, ids)
    assert len(events) == 30
    assert all(e.provider_batch for e in events)


async def anthropic_stats(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.mock_url) as mock:
        batches = (await mock.get("/_batches")).json()
        calls = (await mock.get("/_stats")).json()["calls_by_model"]
    return {"batches": batches["batches"].get("anthropic", 0), "lines": batches["lines"]} | {
        "calls": calls
    }


async def test_a_pool_killed_inside_anthropics_create_submits_nothing_twice(
    stack: Stack, offload: Offloading, producer: KafkaProducer, knobs: httpx.AsyncClient
) -> None:
    await knobs.post("/_control/batches", json={"create_delay_s": 8})
    before = await anthropic_stats(stack)
    sent = await send_lines(producer, 12, CLAUDE)

    async def created() -> bool:
        return bool((await anthropic_stats(stack))["batches"] > before["batches"])

    await eventually(created, what="the message batch created", timeout_s=90)
    offload.kill()  # the provider has the batch; the pool never got its id
    await knobs.post("/_control/batches", json={})
    offload.start()
    offload.assigned()
    results = await each_result(producer, sent)
    assert {r.status for r in results} == {Status.SUCCEEDED}
    after = await anthropic_stats(stack)
    assert after["lines"] - before["lines"] == 12  # the batch was found, not created again
    assert after["calls"] == before["calls"]  # and no line went on demand
    events = await usage_of(stack, {r.id for r in sent})
    assert all(e.provider_batch and e.provider_batch.startswith("msgbatch_") for e in events)
