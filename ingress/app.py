"""The ingress application: built from settings, resources opened in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from aibroker.kafka.clients import make_consumer, running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.routes import build_route_table
from aibroker.settings import Settings
from aibroker.stores.batches import RedisBatchStore
from aibroker.stores.cache import TtlCache
from aibroker.stores.files import Files, file_store
from aibroker.stores.idempotency import IdempotencyStore
from aibroker.stores.keys import CachedKeys, KeyStore
from aibroker.stores.quota import RedisQuota
from aibroker.stores.redis import connect
from aibroker.stores.results import RequestStore
from aibroker.stores.tenants import TenantStore, seed
from aibroker.stores.webhook_log import RedisWebhookLog
from ingress import (
    admin_api,
    api,
    batches_api,
    deliveries_api,
    dlq_api,
    errors,
    files_api,
    health,
    requests_api,
)
from ingress.bodylimit import BodyLimit
from ingress.replies import CompletionNotices, ReplyListener
from ingress.state import Services
from ingress.submit import Submitter
from topics.apply import apply_topics, delete_topics
from topics.catalog import TopicNames, reply_topic_spec

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    routes = build_route_table(settings)
    instance = settings.ingress.instance or f"ing-{secrets.token_hex(4)}"
    names = TopicNames(settings.kafka.topic_prefix)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reply_spec = reply_topic_spec(
            names, instance, max_message_bytes=settings.kafka.max_message_bytes
        )
        await apply_topics(settings.kafka, [reply_spec])
        reply_consumer = make_consumer(settings.kafka, group_id=None)
        async with connect(settings.redis) as redis, running_producer(settings.kafka) as producer:
            await reply_consumer.start()
            store = RequestStore(redis, settings.redis.ttl_s)
            publisher = Publisher(producer, names)
            key_store = KeyStore(redis)
            tenant_store = TenantStore(redis)
            if settings.tenants_file:
                seeded = await seed(settings.tenants_file, tenant_store, key_store)
                log.info("seeded %d tenants from %s", seeded, settings.tenants_file)
            svc = Services(
                settings=settings,
                routes=routes,
                redis=redis,
                store=store,
                keys=CachedKeys(key_store, settings.ingress.key_cache_ttl_s),
                key_store=key_store,
                replies=ReplyListener(reply_consumer, reply_spec.name),
                notices=CompletionNotices(redis),
                submitter=Submitter(
                    publisher,
                    names,
                    store,
                    reply_spec.name,
                    produce_timeout_s=settings.kafka.request_timeout_ms / 1000 + 1,
                ),
                publisher=publisher,
                idempotency=IdempotencyStore(redis, settings.redis.ttl_s),
                tenant_store=tenant_store,
                tenants=TtlCache(tenant_store.get, settings.quota.cache_ttl_s),
                quota=RedisQuota(redis, settings.quota.lease_s),
                files=Files(redis, file_store(settings.batch)),
                batches=RedisBatchStore(redis, settings.redis.ttl_s),
                webhook_log=RedisWebhookLog(redis, settings.redis.ttl_s),
                names=names,
            )
            app.state.services = svc
            app.state.producer = producer
            loops = [asyncio.create_task(svc.replies.run()), asyncio.create_task(svc.notices.run())]
            log.info("ingress %s ready (reply topic %s)", instance, reply_spec.name)
            try:
                yield
            finally:
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
                await reply_consumer.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await delete_topics(settings.kafka, [reply_spec.name])

    app = FastAPI(
        title="aibroker",
        version="0.1.0",
        lifespan=lifespan,
        responses=errors.ERROR_RESPONSES,
        description="OpenAI-compatible, Kafka-backed asynchronous broker for AI requests.",
    )
    errors.install(app)
    if settings.otel.endpoint:
        # A server span per HTTP call; the request's Kafka record carries its context on to
        # the dispatcher. Without an endpoint the middleware would only cost time per call.
        FastAPIInstrumentor.instrument_app(app, excluded_urls="health/.*,metrics")
    app.include_router(api.router)
    app.include_router(requests_api.router)
    app.include_router(admin_api.router)
    app.include_router(dlq_api.router)
    app.include_router(deliveries_api.router)
    app.include_router(files_api.router)
    app.include_router(batches_api.router)
    app.include_router(health.router)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.ingress.max_body_bytes,
        paths={"/v1/files": settings.batch.max_file_bytes},
    )
    return app
