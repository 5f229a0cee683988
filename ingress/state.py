"""What the routes share, built in the lifespan and hung on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from redis.asyncio import Redis

from aibroker.idempotency import IdempotencyStore
from aibroker.keys import CachedKeys, KeyStore
from aibroker.publish import Publisher
from aibroker.routes import RouteTable
from aibroker.settings import Settings
from aibroker.store import RequestStore
from ingress.replies import CompletionNotices, ReplyListener
from ingress.submit import Submitter


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


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
