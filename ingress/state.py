"""What the routes share (`Services`), opened once per process by `open_services` and hung on
`app.state`: the submission path, the publisher, and the stores the other routes read."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import httpx
from fastapi import Request

from aibroker.control.plane import control_plane
from aibroker.kafka.clients import running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.limits import Limits
from aibroker.routes import RouteTable
from aibroker.settings import KafkaSettings, Settings
from aibroker.stores.batches import BatchStore, RedisBatchStore
from aibroker.stores.cache import TtlCache
from aibroker.stores.files import Files, RedisFiles, file_store
from aibroker.stores.guard import deadline
from aibroker.stores.idempotency import RedisIdempotencyStore
from aibroker.stores.key_use import KeyUse
from aibroker.stores.keys import CachedKeys, KeyStore, limits_of_key
from aibroker.stores.quota import Quota, RedisQuota
from aibroker.stores.redis import RedisClient, connect
from aibroker.stores.response_cache import RedisResponseCache
from aibroker.stores.responses import RedisResponseStore
from aibroker.stores.results import RedisRequestStore
from aibroker.stores.tenants import Tenant, TenantStore, seed
from aibroker.stores.usage import RedisUsageLedger, UsageLedger
from aibroker.stores.webhook_log import RedisWebhookLog, WebhookLog
from ingress.audit import Auditor
from ingress.cache_hits import IngressCache
from ingress.replies import CompletionNotices, reply_listener
from ingress.submission import Submission
from ingress.tokens import Issuers
from topics.apply import apply_topics, delete_topics
from topics.catalog import TopicNames, TopicSpec, config_topic_spec, reply_topic_spec

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    routes: RouteTable
    names: TopicNames
    submission: Submission
    publisher: Publisher
    redis: RedisClient
    """For the readiness check only; every read and write goes through a store."""
    keys: CachedKeys
    key_store: KeyStore
    tenant_store: TenantStore
    tenants: TtlCache[Tenant | None]
    key_limits: TtlCache[Limits]
    """Each key's own limits, for the `x-ratelimit-*` headers."""
    quota: Quota
    files: Files
    batches: BatchStore
    webhook_log: WebhookLog
    usage: UsageLedger
    auditor: Auditor
    issuers: Issuers
    """The JWT issuers trusted here (false when none is configured)."""
    key_use: KeyUse
    """Each key's last use, noted at authentication."""


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, routes: RouteTable, instance: str
) -> AsyncIterator[Services]:
    """Everything ingress holds open: its own reply topic (made here, deleted at the end),
    the producer, Redis and the two listeners that learn of ended requests."""
    names = TopicNames(settings.kafka.topic_prefix)
    reply_spec = reply_topic_spec(
        names, instance, max_message_bytes=settings.kafka.max_message_bytes
    )
    await apply_topics(settings.kafka, [config_topic_spec(names)])
    async with (
        _reply_topic(settings.kafka, reply_spec),
        connect(settings.redis) as redis,
        running_producer(settings.kafka) as producer,
        control_plane(settings.kafka, names.config, redis, producer) as plane,
        httpx.AsyncClient(timeout=5.0) as jwks_http,
        reply_listener(settings.kafka, reply_spec.name) as replies,
    ):
        ttl_s = settings.redis.ttl_s
        publisher = Publisher(producer, names, envelope_secret=settings.auth.envelope_secret)
        key_store, tenant_store = plane.keys, plane.tenants  # written through the config topic
        if settings.tenants_file:
            with deadline(30.0):  # a start-up chore, not a request: give it time
                seeded = await seed(settings.tenants_file, tenant_store, key_store)
            log.info("seeded %d tenants from %s", seeded, settings.tenants_file)
        notices = CompletionNotices(redis)
        submission = Submission(
            publisher,
            RedisRequestStore(redis, ttl_s),
            RedisIdempotencyStore(redis, ttl_s),
            replies,
            notices,
            names,
            reply_topic=reply_spec.name,
            produce_timeout_s=settings.kafka.request_timeout_ms / 1000 + 1,
            redis_deadline_s=settings.redis.request_timeout_s,
            responses=RedisResponseStore(redis, settings.responses),
            cache=IngressCache(RedisResponseCache(redis), publisher, routes, settings.cache)
            if settings.cache.enabled
            else None,
        )
        svc = Services(
            settings=settings,
            routes=routes,
            names=names,
            submission=submission,
            publisher=publisher,
            redis=redis,
            keys=CachedKeys(key_store, settings.ingress.key_cache_ttl_s),
            key_store=key_store,
            tenant_store=tenant_store,
            tenants=TtlCache(tenant_store.get, settings.ingress.key_cache_ttl_s),
            key_limits=TtlCache(partial(limits_of_key, key_store), settings.quota.cache_ttl_s),
            quota=RedisQuota(redis, settings.quota.lease_s),
            files=RedisFiles(redis, file_store(settings.batch)),
            batches=RedisBatchStore(redis, ttl_s),
            webhook_log=RedisWebhookLog(redis, ttl_s),
            usage=RedisUsageLedger(redis),
            auditor=Auditor(publisher, settings.auth.refusals_window_s),
            issuers=Issuers(settings.auth.jwt_issuers, jwks_http),
            key_use=KeyUse(redis),
        )
        loops = [
            asyncio.create_task(notices.run()),
            asyncio.create_task(svc.auditor.run()),
        ]
        log.info("ingress %s ready (reply topic %s)", instance, reply_spec.name)
        try:
            yield svc
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)


@contextlib.asynccontextmanager
async def _reply_topic(kafka: KafkaSettings, spec: TopicSpec) -> AsyncIterator[None]:
    """This instance's reply topic: made before anything listens on it, deleted at the end
    (after a start that failed half-way too)."""
    await apply_topics(kafka, [spec])
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await delete_topics(kafka, [spec.name])
