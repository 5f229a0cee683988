"""A write ingress refused (503) may land all the same: the 503 names the request, the request
is flagged cancelled before the answer goes out, so neither the dispatcher's admission nor a
pool's claim lets it run; and a retry whose Idempotency-Key is that id answers as that request
when it was written and not cancelled."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from aibroker.devstack import embedded
from aibroker.identity import Client
from aibroker.kafka.clients import make_consumer, make_producer
from aibroker.kafka.producer import Producer
from aibroker.kafka.publisher import Publisher
from aibroker.limits import Limits
from aibroker.settings import KafkaSettings, Settings
from aibroker.stores.claims import Claim, RedisClaimStore
from aibroker.stores.idempotency import RedisIdempotencyStore
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.quota import RedisQuota
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import RedisRequestStore
from ingress.replies import CompletionNotices, ReplyListener
from ingress.submission import Submission
from schemas.envelopes import Kind, Mode, Result, Status
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue

pytestmark = pytest.mark.integration

NOW = 1_900_000_000.0


def submission(
    settings: KafkaSettings, producer: Producer, replies: AIOKafkaConsumer, redis: RedisClient
) -> Submission:
    """A submission for async work (`replies` is never started: no sync call here)."""
    names = TopicNames(settings.topic_prefix)
    return Submission(
        Publisher(producer, names),
        RedisRequestStore(redis, 60),
        RedisIdempotencyStore(redis, 60),
        ReplyListener(replies, f"{names.prefix}replies.x"),
        CompletionNotices(redis),
        names,
        reply_topic=f"{names.prefix}replies.x",
        produce_timeout_s=2,
        redis_deadline_s=1,
    )


@pytest.fixture
async def up(settings: Settings, redis: RedisClient) -> AsyncIterator[Submission]:
    """A submission on the tests' Kafka, running."""
    await apply_topics(
        settings.kafka, catalogue(TopicNames(settings.kafka.topic_prefix), [], partitions=1)
    )
    producer, replies = make_producer(settings.kafka), make_consumer(settings.kafka, group_id=None)
    await producer.start()
    yield submission(settings.kafka, producer, replies, redis)
    await producer.stop()
    await replies.stop()


async def test_a_refused_write_is_named_and_never_runs(tmp_path: Path, redis: RedisClient) -> None:
    with embedded.tansu(tmp_path) as broker:
        settings = KafkaSettings(bootstrap=broker.url, engine="tansu", request_timeout_ms=1000)
        await apply_topics(settings, catalogue(TopicNames(settings.topic_prefix), [], partitions=1))
        producer, replies = make_producer(settings), make_consumer(settings, group_id=None)
        await producer.start()
        submitter = submission(settings, producer, replies, redis)
        key = Client(tenant=f"t{uuid.uuid4().hex[:8]}", key_id="key_1")
        broker.process.kill()
        broker.process.wait()
        refused = submitter.envelope(key, Kind.CHAT, "m", {"model": "m"}, Mode.ASYNC)
        answer = await submitter.submit(refused, None)
        await producer.stop()
        await replies.stop()

    assert answer.status_code == 503
    assert answer.headers["x-request-id"] == refused.id  # the id it would have had
    assert "x-aibroker-request-id" not in answer.headers  # not accepted
    error = orjson.loads(answer.body)["error"]
    assert refused.id in error["message"]
    assert answer.headers["retry-after"]
    # Should the write land later: the dispatcher does not admit it, no pool claims it.
    scopes = [(quota_scope(key.tenant), Limits())]
    verdict = await RedisQuota(redis, lease_s=60).admit(refused.id, key.tenant, scopes, 1, NOW)
    assert verdict.cancelled
    claims = RedisClaimStore(redis, lease_s=60, done_ttl_s=60)
    claim = await claims.acquire(refused.id, 1, "pool-1", key.tenant)
    assert claim is Claim.CANCELLED


async def test_a_retry_keyed_with_a_written_requests_id_answers_as_it(up: Submission) -> None:
    key = Client(tenant=f"t{uuid.uuid4().hex[:8]}", key_id="key_1")
    first = up.envelope(key, Kind.CHAT, "m", {"model": "m"}, Mode.ASYNC)
    await up.write(first)  # written (its 503 told the client it might be)
    again = up.envelope(key, Kind.CHAT, "m", {"model": "m"}, Mode.ASYNC)
    answer = await up.submit(again, None, idempotency_key=first.id)
    assert answer.status_code == 202
    assert orjson.loads(answer.body)["id"] == first.id  # the same request, not a second one
    assert (await up.state(first.id, key.tenant)).status is Status.QUEUED

    other = Client(tenant=f"t{uuid.uuid4().hex[:8]}", key_id="key_2")
    theirs = up.envelope(other, Kind.CHAT, "m", {"model": "m"}, Mode.ASYNC)
    answer = await up.submit(theirs, None, idempotency_key=first.id)  # another tenant's id
    assert orjson.loads(answer.body)["id"] == theirs.id


async def test_a_retry_keyed_with_a_cancelled_requests_id_runs_anew(
    up: Submission, redis: RedisClient
) -> None:
    """The id of a refused write that landed and was dropped (its result: cancelled)."""
    key = Client(tenant=f"t{uuid.uuid4().hex[:8]}", key_id="key_1")
    first = up.envelope(key, Kind.CHAT, "m", {"model": "m"}, Mode.ASYNC)
    await up.write(first)
    dropped = Result(id=first.id, tenant=key.tenant, status=Status.CANCELLED, finished_at=NOW)
    await RedisRequestStore(redis, 60).finish(dropped)
    again = up.envelope(key, Kind.CHAT, "m", {"model": "m"}, Mode.ASYNC)
    answer = await up.submit(again, None, idempotency_key=first.id)
    assert orjson.loads(answer.body)["id"] == again.id
