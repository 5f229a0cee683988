"""`aibroker.client` through the whole broker: a request over HTTP, a direct producer's
envelope through the dispatcher and a pool back to it from `results`, and a batch followed to
its end with progress."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from aibroker.client import APIError, BatchProgress, Broker, KafkaProducer
from aibroker.kafka.clients import connection, make_consumer
from loadtest.stack import Stack
from schemas.envelopes import Kind, Status
from tests.waiting import eventually
from topics.catalog import TopicNames

pytestmark = pytest.mark.e2e

FORGED = "not-the-secret"  # not tenant-a's producer secret
CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello client"}]}


async def test_a_request_runs_over_http_and_results_come_as_they_end(stack: Stack) -> None:
    async with Broker(stack.url, stack.api_key) as broker:
        async with asyncio.timeout(60):
            done = await broker.run("/v1/chat/completions", CHAT)
            assert done.status is Status.SUCCEEDED
            assert done.response is not None
            assert "hello client" in done.response["choices"][0]["message"]["content"]
            ids = [(await broker.submit("/v1/chat/completions", CHAT)).id for _ in range(3)]
            ended = [s async for s in broker.results(ids)]
        assert sorted(s.id for s in ended) == sorted(ids)
        assert {s.status for s in ended} == {Status.SUCCEEDED}


async def test_a_direct_producers_request_comes_back_from_results(stack: Stack) -> None:
    producing = {"enable_idempotence": stack.kafka.producer_idempotent}
    async with KafkaProducer(
        tenant="tenant-a",
        secret=stack.producer_secret,
        prefix=stack.prefix,
        results=True,
        producer_options=producing,
        **connection(stack.kafka),
    ) as producer:
        async with asyncio.timeout(60):
            result = await producer.run(Kind.CHAT, CHAT)
    assert result.status is Status.SUCCEEDED
    assert result.served_by is not None
    assert result.served_by.provider == "mock"
    assert result.response is not None
    assert "hello client" in result.response["choices"][0]["message"]["content"]


async def test_a_forged_envelope_goes_to_the_dlq_and_not_to_a_pool(stack: Stack) -> None:
    """Signed with a secret that is not tenant-a's: the dispatcher refuses it."""
    producing = {"enable_idempotence": stack.kafka.producer_idempotent}
    async with KafkaProducer(
        tenant="tenant-a",
        secret=FORGED,
        prefix=stack.prefix,
        producer_options=producing,
        **connection(stack.kafka),
    ) as producer:
        sent = await producer.send(Kind.CHAT, CHAT)
    dlq = make_consumer(stack.kafka, TopicNames(stack.prefix).dlq, group_id=None)
    await dlq.start()
    try:

        async def dead_letter() -> dict[str, bytes] | None:
            batches = await dlq.getmany(timeout_ms=200)
            for record in (r for records in batches.values() for r in records):
                if record.key == sent.id.encode():
                    return dict(record.headers)
            return None

        headers = await eventually(dead_letter, timeout_s=60, what="the forged envelope's DLQ")
    finally:
        await dlq.stop()
    assert headers is not None
    assert headers["aib-dlq-kind"] == b"unauthenticated"
    async with Broker(stack.url, stack.api_key) as broker:
        with pytest.raises(APIError) as unknown:  # never taken in as a request
            await broker.get(sent.id)
    assert unknown.value.status == 404


async def test_a_batch_is_followed_to_its_end_with_progress(stack: Stack) -> None:
    lines = [
        {"custom_id": f"c-{i}", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
        for i in range(4)
    ]
    data = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
    seen: list[BatchProgress] = []
    async with Broker(stack.url, stack.api_key) as broker:
        batch = await broker.upload_batch(data, window="1h")
        async with asyncio.timeout(90):
            final = await broker.follow_batch(batch.id, on_progress=seen.append, interval=0.2)
        assert final.status == "completed"
        assert final.done == 4
        assert final.output_file_id is not None
        output = await broker.file_content(final.output_file_id)
    ids = sorted(orjson.loads(line)["custom_id"] for line in output.splitlines())
    assert ids == [f"c-{i}" for i in range(4)]
    assert [p.done for p in seen] == sorted(p.done for p in seen)
