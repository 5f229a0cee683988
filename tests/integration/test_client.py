"""`aibroker.client` against in-process ingress on the suite's real Kafka and Redis (nothing
runs the requests here: the end-to-end round trips are in tests/e2e/test_client.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from aibroker.client import APIError, BatchProgress, Broker, KafkaProducer, new_request
from aibroker.kafka.clients import connection, make_consumer, running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.routes import build_route_table
from aibroker.settings import Settings
from aibroker.signing import Signer, proof
from consumers.results.sink import run as run_sink
from schemas.envelopes import Kind, Request, Status
from schemas.terminal import terminal
from tests.ingress_app import Served
from tests.waiting import eventually
from topics.asyncapi import deployment_document
from topics.catalog import TopicNames

pytestmark = [pytest.mark.integration]

SECRET = "s3cret"  # noqa: S105  # tenant acme's producer secret, here only
CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def sink(served: Served) -> AsyncIterator[None]:
    """The results sink beside ingress: a cancelled request ends through it, as in a broker."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_sink(served.settings, stop))
    yield
    stop.set()
    await task


async def broker_of(served: Served) -> Broker:
    token, _ = await served.key(await served.tenant())
    return Broker(served.url, token)


async def test_submit_get_cancel_and_wait_over_http(served: Served, sink: None) -> None:
    async with await broker_of(served) as broker:
        accepted = await broker.submit("/v1/chat/completions", CHAT, idempotency_key="k-1")
        assert accepted.status is Status.QUEUED
        assert not accepted.ended
        again = await broker.submit("/v1/chat/completions", CHAT, idempotency_key="k-1")
        assert again.id == accepted.id
        assert (await broker.get(accepted.id)).status is Status.QUEUED
        other = await broker.submit("/v1/chat/completions", CHAT)
        assert (await broker.cancel(accepted.id)).status is Status.CANCELLED
        async with asyncio.timeout(10):
            ended = await broker.wait(accepted.id)
        assert ended.status is Status.CANCELLED
        assert ended.ended
        await broker.cancel(other.id)
        async with asyncio.timeout(10):
            seen = [s.id async for s in broker.results([accepted.id, other.id])]
        assert sorted(seen) == sorted([accepted.id, other.id])


async def test_a_refusal_is_an_api_error_with_the_openai_error_object(served: Served) -> None:
    async with await broker_of(served) as broker:
        with pytest.raises(APIError) as refused:
            await broker.submit("/v1/chat/completions", {"model": "mock/echo", "messages": []})
        assert refused.value.status == 400
        assert refused.value.type == "invalid_request_error"
        assert not refused.value.retryable
    async with Broker(served.url, "aib_not-a-key") as stranger:
        with pytest.raises(APIError) as unknown:
            await stranger.get("req_x")
        assert unknown.value.status == 401


async def test_a_batch_is_uploaded_and_refused_lines_are_named(served: Served) -> None:
    bad = b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {}}\n'
    async with await broker_of(served) as broker:
        batch = await broker.upload_batch(bad, endpoint="/v1/chat/completions")
        assert batch.status == "failed"
        assert batch.errors
        seen: list[BatchProgress] = []
        final = await broker.follow_batch(batch.id, on_progress=seen.append, interval=0.05)
        assert final.status.ended
        assert [p.id for p in seen] == [batch.id]


async def test_ingress_serves_its_asyncapi_document(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as anyone:
        answer = await anyone.get("/asyncapi.json")
    assert answer.status_code == 200
    doc = answer.json()
    routes = build_route_table(served.settings)
    assert doc == deployment_document(served.settings, routes)
    prefix = served.settings.kafka.topic_prefix
    assert doc["channels"]["requests-interactive"]["address"] == f"{prefix}requests.interactive"
    assert doc["channels"]["dispatch-mock"]["address"] == f"{prefix}dispatch.mock"


async def test_a_direct_producer_writes_signed_keyed_envelopes_and_gets_results(
    settings: Settings, served: Served
) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    producing = {"enable_idempotence": settings.kafka.producer_idempotent, "linger_ms": 1}
    lane = make_consumer(settings.kafka, names.requests_batch, group_id=f"{names.prefix}lane")
    await lane.start()
    try:
        async with KafkaProducer(
            tenant="acme",
            secret=SECRET,
            prefix=names.prefix,
            results=True,
            producer_options=producing,
            **connection(settings.kafka),
        ) as producer:
            sent = await producer.send(Kind.CHAT, CHAT, priority="batch")
            record = await eventually(lambda: _one(lane), what="the envelope on its lane")
            assert record is not None
            assert record.key == sent.id.encode()
            assert Request.model_validate_json(record.value) == sent
            headers = list(record.headers)
            assert proof(record.value, headers, "acme", None, {"acme": SECRET}) is Signer.TENANT
            # A result for it on `results`, as a consumer writes one, reaches the producer.
            async with running_producer(settings.kafka) as raw:
                await Publisher(raw, names).result(terminal(sent, Status.SUCCEEDED), None)
            async with asyncio.timeout(20):
                result = await producer.result(sent.id)
            assert result.id == sent.id
            assert result.status is Status.SUCCEEDED
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await producer.result(
                        new_request(tenant="acme", kind=Kind.CHAT, body=CHAT, now=time.time()).id
                    )
    finally:
        await lane.stop()


async def _one(consumer: AIOKafkaConsumer) -> ConsumerRecord[bytes, bytes] | None:
    batches = await consumer.getmany(timeout_ms=200)
    return next((r for records in batches.values() for r in records), None)
