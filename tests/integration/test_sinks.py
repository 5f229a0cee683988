"""The services at the end of a request's way, each on real Kafka and Redis, fed records as the
worker hands them over: the results sink, the webhook deliverer (against a receiver served
here), and the batch runner (expander, aggregator, sweeper)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from standardwebhooks.webhooks import Webhook as Verifier

from aibroker.kafka.clients import decode, make_consumer, make_producer
from aibroker.kafka.producer import Producer
from aibroker.kafka.publisher import DEST_HEADER, Publisher
from aibroker.limits import Limits
from aibroker.settings import BatchSettings, Settings, WebhookSettings
from aibroker.stores.batches import RedisBatchStore
from aibroker.stores.cache import TtlCache
from aibroker.stores.files import RedisFiles, file_store
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.quota import RedisQuota
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import RedisRequestStore, cancel_key
from aibroker.stores.tenants import (
    Endpoint,
    RedisTenantStore,
    Tenant,
    new_webhook_secret,
)
from aibroker.stores.usage import RedisUsageLedger
from aibroker.stores.webhook_log import RedisWebhookLog
from aibroker.usage_report import GroupBy, hour_of, report
from consumers.batches.runner import BatchRunner
from consumers.results.sink import ResultsSink
from consumers.results.usage import UsageCounter
from consumers.webhooks.deliverer import Deliverer
from schemas.batch_file import line_request_id
from schemas.batches import Batch, BatchStarted, BatchStatus
from schemas.envelopes import (
    Delivery,
    Kind,
    Mode,
    Request,
    Result,
    Status,
    UsageEvent,
    Webhook,
    WebhookEvent,
)
from tests.records import read, record
from topics.apply import apply_topics
from topics.catalog import RETRY_DELAYS, TopicNames, catalogue

pytestmark = [pytest.mark.integration, pytest.mark.smoke]


@pytest.fixture
async def names(settings: Settings) -> TopicNames:
    names = TopicNames(settings.kafka.topic_prefix)
    await apply_topics(settings.kafka, catalogue(names, [], partitions=1))
    return names


@pytest.fixture
async def publisher(settings: Settings, names: TopicNames) -> AsyncIterator[Publisher]:
    producer: Producer = make_producer(settings.kafka)
    await producer.start()
    yield Publisher(producer, names)
    await producer.stop()


@pytest.fixture
async def listen(settings: Settings, names: TopicNames) -> AsyncIterator[AIOKafkaConsumer]:
    topics = [names.requests_batch, names.webhooks, *(names.retry(d) for d in RETRY_DELAYS)]
    consumer = make_consumer(settings.kafka, *topics, group_id=None)
    await consumer.start()
    yield consumer
    await consumer.stop()


def tenant_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def result(status: Status = Status.SUCCEEDED, **fields: object) -> Result:
    base: dict[str, object] = {
        "id": f"req_{uuid.uuid4().hex}",
        "tenant": tenant_name(),
        "status": status,
        "finished_at": time.time(),
        "response": {"ok": True} if status is Status.SUCCEEDED else None,
    }
    return Result.model_validate(base | fields)


# The results sink


def sink_of(redis: RedisClient, publisher: Publisher) -> ResultsSink:
    tenants = RedisTenantStore(redis)
    return ResultsSink(
        RedisRequestStore(redis, 60),
        RedisQuota(redis, lease_s=60),
        TtlCache(tenants.get, 0.0),
        publisher,
    )


async def test_the_sink_keeps_the_first_result_and_frees_the_slot(
    redis: RedisClient, publisher: Publisher
) -> None:
    store, quota = RedisRequestStore(redis, 60), RedisQuota(redis, lease_s=60)
    sink = sink_of(redis, publisher)
    first = result(cost_usd=Decimal("0.25"))
    scopes = [(quota_scope(first.tenant), Limits(concurrency=1))]
    assert (await quota.admit(first.id, first.tenant, scopes, 10, time.time())).admitted
    refused = await quota.admit("req_other", first.tenant, scopes, 10, time.time())
    assert not refused.admitted  # the slot is held
    await sink.on_result(record(first, first.id))
    late = first.model_copy(update={"status": Status.FAILED, "response": None})
    await sink.on_result(record(late, late.id))  # a duplicate: dropped
    state = await store.get(first.id)
    assert state is not None
    assert state.result is not None
    assert (state.status, state.result.response) == (Status.SUCCEEDED, {"ok": True})
    assert (await quota.admit("req_next", first.tenant, scopes, 10, time.time())).admitted


async def test_budget_thresholds_are_announced_once_a_month(
    redis: RedisClient, publisher: Publisher, listen: AIOKafkaConsumer
) -> None:
    """50 %, 80 % and 100 % of the budget each give one `budget.threshold` event per
    endpoint, however many results (or sink replicas, or replays) see the spend past them."""
    tenant = tenant_name()
    hook = Endpoint(url="https://example.com/hook")
    await RedisTenantStore(redis).put(
        Tenant(name=tenant, limits=Limits(budget_usd_month=Decimal("1.00")), webhooks=[hook])
    )
    sink, quota = sink_of(redis, publisher), RedisQuota(redis, lease_s=60)
    for cost in ("0.30", "0.25", "0.10", "0.30", "0.20", "0.05"):  # 30 55 65 95 115 120 %
        done = result(tenant=tenant, cost_usd=Decimal(cost))
        scopes = [(quota_scope(tenant), Limits())]
        assert (await quota.admit(done.id, tenant, scopes, 1, time.time())).admitted
        await sink.on_result(record(done, done.id))
    warnings = [
        Delivery.model_validate_json(r.value)
        for r in await read(listen, 3, timeout_s=5)
        if r.topic.endswith("webhooks")
    ]
    assert [w.payload["data"]["threshold_percent"] for w in warnings] == [50, 80, 100]
    assert {w.event for w in warnings} == {WebhookEvent.BUDGET_THRESHOLD}
    assert warnings[0].payload["data"]["spent_usd"] == "0.55"


# The usage consumer


async def test_usage_is_counted_once_however_often_it_is_read(redis: RedisClient) -> None:
    """A restarted or replayed consumer reads the same events again: the ledger counts each
    once (by its id; by its record's coordinates before events had ids)."""
    tenant, ledger = tenant_name(), RedisUsageLedger(redis)
    counter = UsageCounter(ledger)
    at = time.time()
    events = [
        UsageEvent(
            id=f"use_{i}_{tenant}",
            request_id=f"req_{i}",
            tenant=tenant,
            user="ann" if i % 2 else "bob",
            model="mock/echo",
            provider="mock",
            upstream_model="echo",
            prompt_tokens=10,
            completion_tokens=5,
            cached_tokens=2,
            cost_usd=Decimal("0.001"),
            latency_ms=40.0 * (i + 1),
            at=at,
        )
        for i in range(4)
    ]
    events.append(events[0].model_copy(update={"id": None, "status": "error", "prompt_tokens": 0}))
    for _ in range(3):  # the first reading, a restart, a replay from the start
        for offset, event in enumerate(events):
            await counter.on_usage(record(event, tenant, offset=offset))
    hour = hour_of(at)
    rows = report(await ledger.hours([tenant], hour, hour), [GroupBy.USER])
    assert [(r["user"], r["requests"], r["errors"]) for r in rows] == [("ann", 2, 0), ("bob", 3, 1)]
    assert rows[0]["prompt_tokens"] == 20
    assert rows[0]["cost_usd"] == "0.002"
    total = report(await ledger.hours([tenant], hour, hour), [])
    assert total[0]["requests"] == 5
    assert total[0]["latency_ms"] == {"p50": 100, "p90": 250, "p99": 250}


# The webhook deliverer


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[web.Request], list[bytes]]]:
    """A webhook receiver: answers 500 to a body holding `fail`, else 204."""
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        return web.Response(status=500 if b"fail" in bodies[-1] else 204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/hook", seen, bodies
    await runner.cleanup()


@pytest.fixture
async def deliverer(publisher: Publisher, redis: RedisClient) -> Deliverer:
    settings = WebhookSettings(allow_http=True, allow=["127.0.0.0/8"], schedule_s=[5.0, 60.0])
    return Deliverer(
        publisher, RedisWebhookLog(redis, 60), RedisTenantStore(redis), settings, cache_ttl_s=0.0
    )


async def test_a_result_is_announced_once_signed(
    deliverer: Deliverer,
    receiver: tuple[str, list[web.Request], list[bytes]],
    redis: RedisClient,
) -> None:
    url, seen, bodies = receiver
    secret = new_webhook_secret()
    done = result(webhook=Webhook(url=url))
    await RedisTenantStore(redis).put(Tenant(name=done.tenant, webhook_secrets=[secret]))
    await deliverer.on_result(record(done, done.id))
    await deliverer.on_result(record(done, done.id))  # redelivered: its message is made already
    assert len(seen) == 1
    payload = Verifier(secret).verify(bodies[0], dict(seen[0].headers))
    assert (payload["type"], payload["data"]["id"]) == ("request.completed", done.id)
    [entry] = await RedisWebhookLog(redis, 60).attempts(done.id)
    assert (entry["status"], entry["outcome"]) == (204, "delivered")


async def test_a_failed_delivery_is_retried_through_a_delay_topic(
    deliverer: Deliverer,
    receiver: tuple[str, list[web.Request], list[bytes]],
    redis: RedisClient,
    names: TopicNames,
    listen: AIOKafkaConsumer,
) -> None:
    url, seen, _ = receiver
    done = result(webhook=Webhook(url=url), response={"fail": True})
    await RedisTenantStore(redis).put(
        Tenant(name=done.tenant, webhook_secrets=[new_webhook_secret()])
    )
    await deliverer.on_result(record(done, done.id))
    [held] = await read(listen, 1)
    assert held.topic.startswith(names.retry(""))
    assert dict(held.headers)[DEST_HEADER] == names.webhooks.encode()
    again = decode(Delivery, held.value)
    assert (again.request_id, again.attempt, len(seen)) == (done.id, 2, 1)
    [entry] = await RedisWebhookLog(redis, 60).attempts(done.id)
    assert (entry["status"], entry["outcome"]) == (500, "retryin")


# The batch runner


@pytest.fixture
async def runner(publisher: Publisher, redis: RedisClient, tmp_path: Path) -> BatchRunner:
    settings = BatchSettings(files_dir=tmp_path, expand_per_s=10_000.0)
    return BatchRunner(
        publisher,
        RedisRequestStore(redis, 60),
        RedisTenantStore(redis),
        RedisBatchStore(redis, 60),
        RedisFiles(redis, file_store(settings)),
        settings,
    )


async def start_batch(runner: BatchRunner, redis: RedisClient, custom_ids: list[str]) -> Batch:
    tenant = tenant_name()
    hook = Endpoint(url="https://example.com/hook", events=["batch.completed"])
    await RedisTenantStore(redis).put(Tenant(name=tenant, webhooks=[hook]))
    lines = [
        {
            "custom_id": c,
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "m", "input": c},
        }
        for c in custom_ids
    ]
    data = b"\n".join(orjson.dumps(line) for line in lines)
    file_id = f"file-{uuid.uuid4().hex}"
    await runner.files.put(file_id, tenant, "in.jsonl", "batch", data)
    now = int(time.time())
    batch = Batch(
        id=f"batch_{uuid.uuid4().hex}",
        endpoint="/v1/embeddings",
        input_file_id=file_id,
        completion_window="24h",
        status=BatchStatus.IN_PROGRESS,
        created_at=now,
        in_progress_at=now,
        expires_at=now + 3600,
        tenant=tenant,
    )
    await runner.batches.create(batch, custom_ids)
    return batch


async def test_a_batch_is_fed_then_completed_with_its_files(
    runner: BatchRunner, redis: RedisClient, names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    batch = await start_batch(runner, redis, ["a", "b", "c"])
    await runner.on_event(record(BatchStarted(batch_id=batch.id), batch.id))
    fed = [decode(Request, r.value) for r in await read(listen, 3)]
    assert sorted(r.custom_id or "" for r in fed) == ["a", "b", "c"]
    assert {(r.mode, r.priority, r.kind) for r in fed} == {(Mode.BATCH, "batch", Kind.EMBEDDINGS)}
    assert {r.id for r in fed} == {line_request_id(batch.id, c) for c in "abc"}
    for line in fed:
        status = Status.FAILED if line.custom_id == "c" else Status.SUCCEEDED
        error = {"message": "no", "type": "invalid_request_error", "http_status": 400}
        ended = result(
            status,
            id=line.id,
            tenant=batch.tenant,
            batch_id=batch.id,
            custom_id=line.custom_id,
            error=error if status is Status.FAILED else None,
        )
        await runner.on_result(record(ended, ended.id))
    done = await runner.batches.get(batch.id)
    assert done is not None
    assert done.status is BatchStatus.COMPLETED
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    output = await runner.files.store.read(batch.file_id("output"))
    errors = await runner.files.store.read(batch.file_id("error"))
    assert sorted(orjson.loads(row)["custom_id"] for row in output.splitlines()) == ["a", "b"]
    assert [orjson.loads(row)["custom_id"] for row in errors.splitlines()] == ["c"]
    [announced] = await read(listen, 1)
    assert announced.topic == names.webhooks
    assert decode(Delivery, announced.value).payload["data"]["status"] == "completed"


async def test_a_cancelled_batch_is_swept_with_its_open_lines_closed(
    runner: BatchRunner, redis: RedisClient
) -> None:
    batch = await start_batch(runner, redis, ["a", "b"])
    ok = result(id=line_request_id(batch.id, "a"), batch_id=batch.id, custom_id="a")
    await runner.on_result(record(ok, ok.id))
    await runner.batches.transition(
        batch.id, BatchStatus.CANCELLING, int(time.time()), from_=(BatchStatus.IN_PROGRESS,)
    )
    await runner.sweep_one(batch.id)
    ended = await runner.batches.get(batch.id)
    assert ended is not None
    assert (ended.status, ended.request_counts.completed, ended.request_counts.failed) == (
        BatchStatus.CANCELLED,
        1,
        1,
    )
    [row] = (await runner.files.store.read(batch.file_id("error"))).splitlines()
    assert orjson.loads(row)["error"]["code"] == "batch_cancelled"
    assert await redis.exists(cancel_key(line_request_id(batch.id, "b")))  # told to stop
