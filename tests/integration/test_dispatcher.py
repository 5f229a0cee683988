"""The Dispatcher service on real Kafka and Redis: its handlers fed records as the worker hands
them over, and what it wrote read back from the topics (routing, quota waits, retries,
terminal errors, delayed records come due, a fallback around an open breaker)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from aibroker.kafka.clients import decode, encode, make_consumer, make_producer
from aibroker.kafka.publisher import DEST_HEADER, DUE_HEADER, Publisher
from aibroker.limits import Limits
from aibroker.routes import Route, RouteTarget
from aibroker.settings import Settings
from aibroker.signing import Signer, refusal, signature_header
from aibroker.stores.breaker import BreakerPolicy
from aibroker.stores.quota import RedisQuota
from aibroker.stores.redis import RedisClient
from aibroker.stores.story import RedisStory
from aibroker.stores.tenants import RedisTenantStore, Tenant
from dispatcher.policy import RetryPolicy
from dispatcher.service import Dispatcher
from schemas.audit import AuditEntry, AuditOutcome
from schemas.envelopes import ErrorInfo, Kind, Mode, Outcome, Request, Result, Status, Target
from tests.dispatchers import running_dispatcher
from tests.records import read, record
from tests.routes import two_providers
from topics.apply import apply_topics
from topics.catalog import RETRY_DELAYS, TopicNames, catalogue

pytestmark = [pytest.mark.integration, pytest.mark.smoke]

BIG = Target(provider="a", model="big")
LARGE = Target(provider="b", model="large")
ROUTES = two_providers(only_a=Route(targets=[RouteTarget(provider="a", model="big")]))
BREAKERS = BreakerPolicy(
    window_s=30, min_calls=4, failure_rate=0.5, cooldown_s=15, probe_timeout_s=5
)


@pytest.fixture
async def names(settings: Settings) -> TopicNames:
    names = TopicNames(settings.kafka.topic_prefix)
    topics = [names.dispatch("a"), names.dispatch("b")]
    await apply_topics(settings.kafka, catalogue(names, topics, partitions=1))
    return names


@pytest.fixture
async def dispatcher(
    settings: Settings, names: TopicNames, redis: RedisClient
) -> AsyncIterator[Dispatcher]:
    async with running_dispatcher(
        settings,
        names,
        redis,
        routes=ROUTES,
        retries=RetryPolicy(max_attempts=3, base_s=1.0, max_s=10.0),
        breakers=BREAKERS,
        health_refresh_s=60,
    ) as dispatcher:
        yield dispatcher


@pytest.fixture
async def listen(settings: Settings, names: TopicNames) -> AsyncIterator[AIOKafkaConsumer]:
    topics = [names.dispatch("a"), names.dispatch("b"), names.results, names.dlq]
    topics += [names.retry(d) for d in RETRY_DELAYS]
    consumer = make_consumer(settings.kafka, *topics, group_id=None)
    await consumer.start()
    yield consumer
    await consumer.stop()


def request(model: str = "smart", **fields: Any) -> Request:
    return Request(
        id=f"req_{uuid.uuid4().hex}",
        tenant=f"t{uuid.uuid4().hex[:8]}",
        kind=Kind.CHAT,
        model=model,
        body={"messages": [{"role": "user", "content": "hi"}]},
        mode=Mode.ASYNC,
        created_at=time.time(),
        **fields,
    )


async def open_breaker(dispatcher: Dispatcher, target: Target) -> float:
    """Fail the target until its breaker opens, and let the dispatcher see it; the time."""
    now = time.time()
    for _ in range(BREAKERS.min_calls):
        await dispatcher.breakers.record(target, ok=False, now=now)
    await dispatcher.health.refresh()
    return now


def by_topic(
    records: list[ConsumerRecord[bytes, bytes]],
) -> dict[str, ConsumerRecord[bytes, bytes]]:
    return {r.topic: r for r in records}


async def test_a_request_goes_to_its_first_target(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    req = request()
    await dispatcher.on_request(record(req, req.id))
    [sent] = await read(listen, 1)
    assert sent.topic == names.dispatch("a")
    routed = decode(Request, sent.value)
    assert (routed.id, routed.target, routed.probe) == (req.id, BIG, False)


async def test_async_work_over_its_quota_waits_in_a_delay_topic(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer, redis: RedisClient
) -> None:
    first, second = request(), request()
    second = second.model_copy(update={"tenant": first.tenant})
    await RedisTenantStore(redis).put(Tenant(name=first.tenant, limits=Limits(rpm=1)))
    await dispatcher.on_request(record(first, first.id))
    await dispatcher.on_request(record(second, second.id))
    found = by_topic(await read(listen, 2))
    assert decode(Request, found[names.dispatch("a")].value).id == first.id
    [held] = [r for r in found.values() if r.topic.startswith(names.retry(""))]
    assert decode(Request, held.value).id == second.id
    headers = dict(held.headers)
    assert headers[DEST_HEADER] == names.requests_interactive.encode()
    assert float(headers[DUE_HEADER]) > time.time() + 1  # the bucket refills in a minute
    [waited] = await RedisStory(redis, 60).waits(second.id)  # its story says why
    assert (waited["reason"], waited["detail"]) == ("quota", "tenant.rpm")


async def test_a_retryable_failure_is_retried_later_on_the_same_target(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer, redis: RedisClient
) -> None:
    failed = request(target=BIG)
    error = ErrorInfo(message="busy", type="server_error", retryable=True, http_status=503)
    await dispatcher.on_outcome(record(Outcome(request=failed, error=error), failed.id))
    [held] = await read(listen, 1)
    assert held.topic.startswith(names.retry(""))
    assert dict(held.headers)[DEST_HEADER] == names.dispatch("a").encode()
    again = decode(Request, held.value)
    assert (again.attempt, again.target_attempt, again.target) == (2, 2, BIG)
    [waited] = await RedisStory(redis, 60).waits(failed.id)
    assert (waited["reason"], waited["detail"]) == ("retry", "server_error")


async def test_a_request_error_ends_the_request(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    failed = request(target=BIG)
    error = ErrorInfo(message="bad", type="invalid_request_error", retryable=False, http_status=400)
    await dispatcher.on_outcome(record(Outcome(request=failed, error=error), failed.id))
    [ended] = await read(listen, 1)
    assert ended.topic == names.results
    result = decode(Result, ended.value)
    assert (result.id, result.status, result.error) == (failed.id, Status.FAILED, error)


async def test_a_due_record_is_sent_on_unchanged(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    retry = request(target=BIG, attempt=2)
    due = f"{time.time() - 1:.3f}".encode()
    headers = [(DUE_HEADER, due), (DEST_HEADER, names.dispatch("a").encode())]
    delayed = record(retry, retry.id, topic=names.retry("1s"), headers=headers)
    await dispatcher.on_delayed(delayed)
    [sent] = await read(listen, 1)
    assert (sent.topic, sent.key, sent.value) == (names.dispatch("a"), delayed.key, delayed.value)


async def test_a_due_retry_goes_around_its_open_target(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    now = await open_breaker(dispatcher, BIG)
    retry = request(target=BIG, attempt=2, target_attempt=2)
    headers = [(DUE_HEADER, f"{now:.3f}".encode()), (DEST_HEADER, names.dispatch("a").encode())]
    await dispatcher.on_delayed(record(retry, retry.id, topic=names.retry("1s"), headers=headers))
    [sent] = await read(listen, 1)
    assert sent.topic == names.dispatch("b")
    moved = decode(Request, sent.value)
    assert (moved.target, moved.tried, moved.attempt) == (LARGE, [BIG], 2)


async def test_a_due_retry_with_nowhere_else_waits_out_the_cool_down(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer, redis: RedisClient
) -> None:
    now = await open_breaker(dispatcher, BIG)
    retry = request("only_a", target=BIG, attempt=2, target_attempt=2)
    headers = [(DUE_HEADER, f"{now:.3f}".encode()), (DEST_HEADER, names.dispatch("a").encode())]
    await dispatcher.on_delayed(record(retry, retry.id, topic=names.retry("1s"), headers=headers))
    [held] = await read(listen, 1)
    assert held.topic.startswith(names.retry(""))
    assert dict(held.headers)[DEST_HEADER] == names.dispatch("a").encode()
    waiting = decode(Request, held.value)
    assert (waiting.attempt, waiting.target_attempt) == (2, 2)  # the wait costs no attempt
    assert float(dict(held.headers)[DUE_HEADER]) >= now + BREAKERS.cooldown_s
    assert [w["reason"] for w in await RedisStory(redis, 60).waits(retry.id)] == ["breaker"]


# Direct producers prove their tenant


BROKER_SECRET = uuid.uuid4().hex  # the services share it; tests make their own


async def test_envelopes_must_prove_their_tenant(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer, settings: Settings
) -> None:
    """Signed by the broker or by the tenant's producer secret: served. Unsigned, signed with
    another tenant's secret, or tampered with: DLQ `unauthenticated`, audited, never served."""
    mine, other = request(), request()
    secrets = {mine.tenant: "mine-secret", other.tenant: "other-secret"}
    dispatcher.envelopes = partial(
        refusal, broker_secret=BROKER_SECRET, producer_secrets=secrets, required=True
    )

    def sent(req: Request, secret: str, signer: Signer) -> ConsumerRecord[bytes, bytes]:
        value = encode(req)
        return record(req, req.id, headers=[signature_header(value, secret, signer)])

    by_broker, by_tenant = request(), mine
    await dispatcher.on_request(sent(by_broker, BROKER_SECRET, Signer.BROKER))
    await dispatcher.on_request(sent(by_tenant, "mine-secret", Signer.TENANT))
    unsigned = request()
    borrowed = other.model_copy(update={"id": f"req_{uuid.uuid4().hex}", "tenant": mine.tenant})
    tampered_source = request()
    tampered = sent(tampered_source, BROKER_SECRET, Signer.BROKER)
    tampered = record(
        tampered_source.model_copy(update={"tenant": other.tenant}),
        tampered_source.id,
        headers=list(tampered.headers),
    )
    await dispatcher.on_request(record(unsigned, unsigned.id))
    await dispatcher.on_request(sent(borrowed, "other-secret", Signer.TENANT))
    await dispatcher.on_request(tampered)
    got = await read(listen, 5)
    routed = {decode(Request, r.value).id for r in got if r.topic == names.dispatch("a")}
    assert routed == {by_broker.id, by_tenant.id}
    dead = {decode(Request, r.value).id: dict(r.headers) for r in got if r.topic == names.dlq}
    assert set(dead) == {unsigned.id, borrowed.id, tampered_source.id}
    assert {h["aib-dlq-kind"] for h in dead.values()} == {b"unauthenticated"}
    assert not [r for r in got if r.topic == names.results]  # nothing answers a forger
    audit = make_consumer(settings.kafka, names.audit, group_id=None)
    await audit.start()
    try:
        entries = [decode(AuditEntry, r.value) for r in await read(audit, 3)]
    finally:
        await audit.stop()
    assert {(e.action, e.outcome, e.target) for e in entries} == {
        ("envelope.refused", AuditOutcome.REFUSED, rid) for rid in dead
    }


async def test_a_quota_wait_keeps_the_broker_signature(
    dispatcher: Dispatcher,
    names: TopicNames,
    listen: AIOKafkaConsumer,
    redis: RedisClient,
    settings: Settings,
) -> None:
    """Work held for quota goes back to its lane through a delay topic, signed by the
    dispatcher, and is served when it comes due where signatures are required."""
    producer = make_producer(settings.kafka)
    await producer.start()
    lane = make_consumer(settings.kafka, names.requests_interactive, group_id=None)
    await lane.start()
    try:
        dispatcher.publisher = Publisher(producer, names, envelope_secret=BROKER_SECRET)
        dispatcher.envelopes = partial(
            refusal, broker_secret=BROKER_SECRET, producer_secrets={}, required=True
        )
        first, second = request(), request()
        second = second.model_copy(update={"tenant": first.tenant})
        await RedisTenantStore(redis).put(Tenant(name=first.tenant, limits=Limits(rpm=1)))
        for req in (first, second):
            signed = [signature_header(encode(req), BROKER_SECRET)]
            await dispatcher.on_request(record(req, req.id, headers=signed))
        [held] = [r for r in await read(listen, 2) if r.topic.startswith(names.retry(""))]
        due_now = [(k, v) for k, v in held.headers if k != DUE_HEADER]
        due_now.append((DUE_HEADER, str(time.time()).encode()))
        await dispatcher.on_delayed(record(second, second.id, headers=due_now))
        [back] = await read(lane, 1)
        await RedisQuota(redis, lease_s=60).reset(f"t:{first.tenant}")
        await dispatcher.on_request(back)
        routed = [decode(Request, r.value).id for r in await read(listen, 1)]
        assert routed == [second.id]
    finally:
        await lane.stop()
        await producer.stop()
