"""`aibroker dispatcher`: the request lanes, the outcomes and the delay topics in one process."""

from __future__ import annotations

import asyncio
from functools import partial

from aibroker.control.plane import read_view
from aibroker.kafka.clients import running_producer
from aibroker.kafka.lag import lag_reader
from aibroker.kafka.publisher import Publisher
from aibroker.routes import build_route_table
from aibroker.runtime.service import WorkerSpec, run_service
from aibroker.settings import Settings
from aibroker.signing import refusal
from aibroker.stores.breaker import BreakerPolicy, RedisBreakers
from aibroker.stores.quota import RedisQuota
from aibroker.stores.redis import connect
from aibroker.stores.response_cache import RedisResponseCache
from aibroker.stores.story import RedisStory
from dispatcher.admission import Admission
from dispatcher.cache import CacheFront
from dispatcher.delays import release_at
from dispatcher.health import HealthView, watched_topics
from dispatcher.injection import injection_guard
from dispatcher.lanes import LaneGate
from dispatcher.offload import offload_router
from dispatcher.policy import RetryPolicy
from dispatcher.semantic import SemanticCache
from dispatcher.semantic_setup import pool_embedder, semantic_index, semantic_model_routed
from dispatcher.service import Dispatcher
from topics.catalog import RETRY_DELAYS, TopicNames


async def run(settings: Settings, stop: asyncio.Event) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    cfg = settings.dispatcher
    policy = RetryPolicy(cfg.max_attempts, cfg.backoff_base_s, cfg.backoff_max_s)
    routes = build_route_table(settings)
    semantic_model_routed(settings, routes)
    async with (
        running_producer(settings.kafka) as producer,
        connect(settings.redis) as redis,
        lag_reader(settings.kafka) as lags,
        semantic_index(settings) as index,
    ):
        admission = Admission(
            RedisQuota(redis, settings.quota.lease_s),
            *read_view(redis, names.config),  # read while the view is rebuilt: waited out
            cache_ttl_s=settings.quota.cache_ttl_s,
            default_completion_tokens=settings.quota.default_completion_tokens,
        )
        breakers = RedisBreakers(
            redis, BreakerPolicy.of(settings.breaker), settings.kafka.topic_prefix
        )
        health = HealthView(breakers, lags, watched_topics(routes, names), cfg.health_refresh_s)
        lanes = LaneGate(cfg.batch_yield_ms / 1000)
        auth = settings.auth
        publisher = Publisher(producer, names, envelope_secret=auth.envelope_secret)
        cache = RedisResponseCache(redis) if settings.cache.enabled else None
        semantic = None
        if cache is not None and index is not None:
            embedder = pool_embedder(settings, publisher, routes, health, redis)
            semantic = SemanticCache(index, embedder, cache, settings.cache)
        dispatcher = Dispatcher(
            publisher,
            routes,
            policy,
            admission,
            health,
            breakers,
            lanes,
            names,
            envelopes=partial(
                refusal,
                broker_secret=auth.envelope_secret,
                producer_secrets=auth.producer_secrets,
                required=auth.require_signed_envelopes,
            ),
            cache=CacheFront(cache, publisher, settings.cache, semantic=semantic)
            if cache
            else None,
            offload=offload_router(settings, routes),
            injection=injection_guard(settings, admission.tenant, publisher, routes, health, redis),
            waits=RedisStory(redis, settings.redis.ttl_s),
        )
        specs = [
            WorkerSpec(
                "dispatcher.interactive",
                [names.requests_interactive],
                "aib-dispatcher",
                dispatcher.on_interactive,
                256,
            ),
            WorkerSpec(
                "dispatcher.batch",
                [names.requests_batch],
                "aib-dispatcher-batch",
                dispatcher.on_batch,
                256,
            ),
            WorkerSpec(
                "dispatcher.outcomes",
                [names.outcomes],
                "aib-dispatcher-outcomes",
                dispatcher.on_outcome,
                256,
                idle=True,
            ),
        ]
        # One consumer per delay topic: a long wait never holds up a short one, and a
        # partition waits, paused, for its next record (dispatcher/delays.py).
        specs += [
            WorkerSpec(
                f"dispatcher.delay.{d}",
                [names.retry(d)],
                f"aib-delay-{d}",
                dispatcher.on_delayed,
                256,
                idle=True,
                due=partial(release_at, d),
            )
            for d in RETRY_DELAYS
        ]
        await run_service(settings, producer, specs, stop, health.run(stop))
