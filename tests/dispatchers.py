"""A dispatcher over real Kafka and Redis for the integration tests, built as `aibroker
dispatcher` builds it, with the routes, retries and breakers a test chooses."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aibroker.kafka.clients import make_producer
from aibroker.kafka.lag import lag_reader
from aibroker.kafka.publisher import Publisher
from aibroker.routes import RouteTable
from aibroker.settings import Settings
from aibroker.stores.breaker import BreakerPolicy, RedisBreakers
from aibroker.stores.keys import RedisKeyStore
from aibroker.stores.quota import RedisQuota
from aibroker.stores.redis import RedisClient
from aibroker.stores.story import RedisStory
from aibroker.stores.tenants import RedisTenantStore
from dispatcher.admission import Admission
from dispatcher.health import HealthView
from dispatcher.lanes import LaneGate
from dispatcher.policy import RetryPolicy
from dispatcher.service import Dispatcher
from topics.catalog import TopicNames


@contextlib.asynccontextmanager
async def running_dispatcher(
    settings: Settings,
    names: TopicNames,
    redis: RedisClient,
    *,
    routes: RouteTable,
    retries: RetryPolicy,
    breakers: BreakerPolicy,
    health_refresh_s: float,
) -> AsyncIterator[Dispatcher]:
    """`health_refresh_s` only sizes the view: nothing refreshes it, so it reads every breaker
    closed unless the test refreshes it."""
    producer = make_producer(settings.kafka)
    await producer.start()
    shared = RedisBreakers(redis, breakers, settings.kafka.topic_prefix)
    admission = Admission(
        RedisQuota(redis, lease_s=60),
        RedisTenantStore(redis),
        RedisKeyStore(redis),
        cache_ttl_s=0.0,
        default_completion_tokens=16,
    )
    try:
        async with lag_reader(settings.kafka) as lags:
            yield Dispatcher(
                Publisher(producer, names),
                routes,
                retries,
                admission,
                HealthView(shared, lags, [], refresh_s=health_refresh_s),
                shared,
                LaneGate(0.01),
                names,
                waits=RedisStory(redis, settings.redis.ttl_s),
            )
    finally:
        await producer.stop()
