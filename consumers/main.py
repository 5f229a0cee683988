"""`aibroker consumer external`: the pool for external OpenAI-compatible providers."""

from __future__ import annotations

import asyncio
import os
import socket

from aibroker.claims import ClaimStore
from aibroker.kafka import running_producer
from aibroker.prices import load_prices
from aibroker.publish import Publisher
from aibroker.redis import connect
from aibroker.routes import build_route_table
from aibroker.runtime import WorkerSpec, run_workers
from aibroker.settings import Settings
from consumers.external import OpenAICompatibleEngine
from consumers.pool import Pool
from topics.catalog import TopicNames


async def run_external(
    settings: Settings, stop: asyncio.Event, providers: list[str] | None = None
) -> None:
    routes = build_route_table(settings)
    chosen = {n: p for n, p in routes.providers.items() if not providers or n in providers}
    if not chosen:
        raise SystemExit(
            "no provider to serve: set AIBROKER_OPENAI_BASE_URL and "
            "AIBROKER_OPENAI_API_KEY, or AIBROKER_PROVIDERS"
        )
    names = TopicNames(settings.kafka.topic_prefix)
    engine = OpenAICompatibleEngine(chosen)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    cfg = settings.consumer
    try:
        async with connect(settings.redis) as redis, running_producer(settings.kafka) as producer:
            pool = Pool(
                engine,
                Publisher(producer, names),
                ClaimStore(redis, lease_s=cfg.claim_lease_s, done_ttl_s=settings.redis.ttl_s),
                load_prices(settings.prices_file),
                owner=owner,
                lease_s=cfg.claim_lease_s,
            )
            spec = WorkerSpec(
                "pool.external",
                [names.dispatch(p) for p in engine.targets()],
                "aib-pool-external",
                pool.on_request,
                cfg.concurrency,
            )
            await run_workers(
                settings.kafka,
                producer,
                [spec],
                stop,
                drain_timeout_s=cfg.drain_timeout_s,
                dlq_topic=names.dlq,
            )
    finally:
        await engine.aclose()
