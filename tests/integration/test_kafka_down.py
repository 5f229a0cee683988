"""No 202 without a write: with Kafka gone, submit refuses with a retryable 503 error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aibroker.devstack import embedded
from aibroker.errors import Unavailable
from aibroker.identity import Client
from aibroker.kafka.clients import make_consumer, make_producer
from aibroker.kafka.publisher import Publisher
from aibroker.settings import KafkaSettings
from aibroker.stores.idempotency import RedisIdempotencyStore
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import RedisRequestStore
from ingress.replies import CompletionNotices, ReplyListener
from ingress.submission import Submission
from schemas.envelopes import Kind, Mode
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue

pytestmark = pytest.mark.integration


async def test_submit_refuses_when_kafka_is_gone(tmp_path: Path, redis: RedisClient) -> None:
    names = TopicNames("down.")
    with embedded.tansu(tmp_path) as broker:
        settings = KafkaSettings(bootstrap=broker.url, engine="tansu", request_timeout_ms=1500)
        await apply_topics(settings, catalogue(names, [], partitions=1))
        producer = make_producer(settings)
        await producer.start()
        replies = make_consumer(settings, group_id=None)
        submitter = Submission(
            Publisher(producer, names),
            RedisRequestStore(redis, 60),
            RedisIdempotencyStore(redis, 60),
            ReplyListener(replies, "down.replies.x"),  # never started: no sync call here
            CompletionNotices(redis),
            names,
            reply_topic="down.replies.x",
            produce_timeout_s=3,
            redis_deadline_s=0.1,
        )
        key = Client(tenant="t", key_id="key_1")
        ok = submitter.envelope(key, Kind.CHAT, "m", {"model": "m"}, Mode.ASYNC)
        await submitter.write(ok)  # acknowledged while the broker is up
        broker.process.kill()
        broker.process.wait()
        refused = submitter.envelope(key, Kind.CHAT, "m", {"model": "m"}, Mode.ASYNC)
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            await submitter.write(refused)
        assert time.monotonic() - started < 5
        assert caught.value.http_status == 503
        assert caught.value.retry_after
        assert await RedisRequestStore(redis, 60).get(refused.id) is None  # never recorded
        await producer.stop()
        await replies.stop()
