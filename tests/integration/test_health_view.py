"""The dispatcher's view of its targets' backlog, on a real Kafka and Redis: what it dispatched
counts at once, and the next lag read takes over from it."""

from __future__ import annotations

import pytest

from aibroker.kafka.clients import running_producer
from aibroker.kafka.lag import lag_reader
from aibroker.settings import Settings
from aibroker.stores.breaker import BreakerPolicy, RedisBreakers
from aibroker.stores.redis import RedisClient
from dispatcher.health import HealthView, Watched
from schemas.envelopes import Target
from topics.apply import apply_topics
from topics.catalog import TopicSpec

pytestmark = pytest.mark.integration

LOCAL = Target(provider="embed", model="m")
OTHER = Target(provider="openai", model="x")


async def test_dispatches_count_until_the_next_lag_read(
    settings: Settings, redis: RedisClient
) -> None:
    topic = f"{settings.kafka.topic_prefix}dispatch.embed.m"
    await apply_topics(settings.kafka, [TopicSpec(topic, 1, 3_600_000, "k", (), ())])
    breakers = RedisBreakers(redis, BreakerPolicy.of(settings.breaker), settings.kafka.topic_prefix)
    async with lag_reader(settings.kafka) as lags:
        view = HealthView(breakers, lags, [Watched("embed/m", topic, "pool-m")], refresh_s=1)
        assert (await view.refresh()).lag(LOCAL) == 0
        for _ in range(3):
            view.dispatched(LOCAL)
        view.dispatched(OTHER)  # not watched: nothing to count
        assert view.current.lag(LOCAL) == 3
        assert view.current.lag(OTHER) == 0
        async with running_producer(settings.kafka) as producer:
            for _ in range(2):
                await producer.send_and_wait(topic, b"r")
        # Two records on the topic and no group has committed: the read says 2, and the
        # three counted before the read are now the read's business.
        assert (await view.refresh()).lag(LOCAL) == 2
