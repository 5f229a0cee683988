"""What the routes share, built in the lifespan and hung on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from redis.asyncio import Redis

from aibroker.kafka.publisher import Publisher
from aibroker.routes import RouteTable
from aibroker.settings import Settings
from aibroker.stores.batches import BatchStore
from aibroker.stores.cache import TtlCache
from aibroker.stores.files import Files
from aibroker.stores.idempotency import IdempotencyStore
from aibroker.stores.keys import CachedKeys, KeyStore
from aibroker.stores.quota import RedisQuota
from aibroker.stores.results import RequestStore
from aibroker.stores.tenants import Tenant, TenantStore
from aibroker.stores.webhook_log import WebhookLog
from ingress.replies import CompletionNotices, ReplyListener
from ingress.submit import Submitter
from topics.catalog import TopicNames


@dataclass
class Services:
    settings: Settings
    routes: RouteTable
    redis: Redis
    store: RequestStore
    keys: CachedKeys
    key_store: KeyStore
    replies: ReplyListener
    notices: CompletionNotices
    submitter: Submitter
    publisher: Publisher
    idempotency: IdempotencyStore
    tenant_store: TenantStore
    tenants: TtlCache[Tenant | None]
    quota: RedisQuota
    files: Files
    batches: BatchStore
    webhook_log: WebhookLog
    names: TopicNames


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
