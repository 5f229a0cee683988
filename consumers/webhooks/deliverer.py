"""`aibroker webhooks`: the deliverer. Every terminal result on `results` becomes one message
per webhook that wants its event (the request's own, the tenant's endpoints, each in the shape
it asked for: the broker's or OpenAI's, as `aibroker/rules/webhooks.py` decides), made once per
request however often the result is redelivered; each attempt is signed (Standard Webhooks),
sent through the SSRF guard, logged, and retried through the delay topics on the schedule.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter

import aiohttp
import orjson
from aiokafka.structs import ConsumerRecord

from aibroker.kafka.clients import decode, running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.netguard import FetchLimits, FetchRefused, post
from aibroker.rules.webhooks import (
    Delivered,
    Disable,
    GiveUp,
    after_attempt,
    messages,
    signed_headers,
)
from aibroker.runtime.service import WorkerSpec, run_service
from aibroker.settings import Settings, WebhookSettings
from aibroker.stores.cache import TtlCache
from aibroker.stores.control_view import ControlView
from aibroker.stores.redis import connect
from aibroker.stores.tenants import RedisTenantStore, Tenant, TenantStore, active_endpoints
from aibroker.stores.webhook_log import RedisWebhookLog, WebhookLog
from aibroker.telemetry import metrics
from schemas.envelopes import Delivery, Result
from topics.catalog import TopicNames

log = logging.getLogger(__name__)

BUSY_WAIT_S = 1.0
"""How long a delivery waits when its tenant already has its share in flight."""


class Deliverer:
    def __init__(
        self,
        publisher: Publisher,
        log: WebhookLog,
        tenants: TenantStore,
        settings: WebhookSettings,
        cache_ttl_s: float,
    ) -> None:
        self.publisher = publisher
        self.log = log
        self.tenant_store = tenants
        self.tenants: TtlCache[Tenant | None] = TtlCache(tenants.get, cache_ttl_s)
        self.settings = settings
        self.limits = FetchLimits.build(
            settings.max_response_bytes, settings.timeout_s, settings.allow
        )
        self.in_flight: Counter[str] = Counter()

    async def on_result(self, record: ConsumerRecord[bytes, bytes]) -> None:
        result = decode(Result, record.value)
        tenant = await self.tenants.get(result.tenant)
        endpoints = active_endpoints(tenant)
        if result.webhook is None and not endpoints:
            return
        made = messages(result, [*endpoints], self.settings.max_payload_bytes, time.time())
        for delivery in made:
            if await self.log.made(delivery.id):
                continue  # a redelivered or duplicate result: its message is made already
            await self.attempt(delivery)  # first: a crash before the mark below redoes it
            await self.log.keep(delivery)

    async def on_delivery(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A retry come due, or an operator's redelivery."""
        await self.attempt(decode(Delivery, record.value))

    async def attempt(self, delivery: Delivery) -> None:
        if self.in_flight[delivery.tenant] >= self.settings.tenant_in_flight:
            await self._later(delivery, BUSY_WAIT_S)  # not an attempt: others go first
            return
        self.in_flight[delivery.tenant] += 1
        try:
            status, retry_after, error = await self._send(delivery)
        finally:
            self.in_flight[delivery.tenant] -= 1
        step = after_attempt(
            status, retry_after, delivery.attempt, self.settings.schedule_s, random.random()
        )
        outcome = type(step).__name__.lower()
        metrics.WEBHOOK_ATTEMPTS.labels(outcome).inc()
        await self._log(delivery, status, error, outcome)
        if isinstance(step, Delivered):
            return
        if isinstance(step, Disable):
            if delivery.endpoint:
                await self.tenant_store.disable_endpoint(delivery.tenant, delivery.url, time.time())
                self.tenants.forget(delivery.tenant)
            log.warning("webhook %s answered 410: not calling it again", delivery.url)
        elif isinstance(step, GiveUp):
            log.warning(
                "webhook %s for %s given up: %s", delivery.id, delivery.request_id, step.reason
            )
        else:
            again = delivery.model_copy(update={"attempt": delivery.attempt + 1})
            await self._later(again, step.delay_s)

    async def _send(self, delivery: Delivery) -> tuple[int | None, float | None, str | None]:
        """The receiver's status and Retry-After, or None and why there was no answer."""
        tenant = await self.tenants.get(delivery.tenant)
        if not (tenant and tenant.webhook_secrets):
            # Cached before its endpoints were registered (the batch runner announces an ended
            # batch to the endpoints it reads fresh): read the tenant again before giving up.
            self.tenants.forget(delivery.tenant)
            tenant = await self.tenants.get(delivery.tenant)
        secrets = tenant.webhook_secrets if tenant else []
        if not secrets:
            return None, None, "the tenant has no webhook secret to sign with"
        if not (self.settings.allow_http or delivery.url.startswith("https://")):
            return None, None, "webhook URLs must be https"
        body = orjson.dumps(delivery.payload)
        headers = signed_headers(delivery, body, secrets)
        try:
            answer = await post(delivery.url, body, headers, self.limits, param="webhook.url")
        except FetchRefused as exc:
            return None, None, exc.message
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, None, f"no answer ({type(exc).__name__})"
        return answer.status, answer.retry_after, None

    async def _later(self, delivery: Delivery, delay_s: float) -> None:
        await self.publisher.deliver(delivery, delay_s=delay_s)

    async def _log(
        self, delivery: Delivery, status: int | None, error: str | None, outcome: str
    ) -> None:
        entry = {
            "webhook_id": delivery.id,
            "tenant": delivery.tenant,
            "url": delivery.url,
            "event": delivery.payload.get("type", delivery.event.value),  # OpenAI's name too
            "attempt": delivery.attempt,
            "status": status,
            "error": error,
            "outcome": outcome,
            "at": time.time(),
        }
        await self.log.attempted(delivery.request_id, entry)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    async with connect(settings.redis) as redis, running_producer(settings.kafka) as producer:
        deliverer = Deliverer(
            Publisher(producer, names),
            RedisWebhookLog(redis, settings.redis.ttl_s),
            RedisTenantStore(redis, ControlView(redis, names.config)),
            settings.webhooks,
            settings.quota.cache_ttl_s,
        )
        specs = [
            WorkerSpec(
                "webhooks.results",
                [names.results],
                "aib-webhooks",
                deliverer.on_result,
                settings.webhooks.concurrency,
            ),
            WorkerSpec(
                "webhooks.retries",
                [names.webhooks],
                "aib-webhooks-retries",
                deliverer.on_delivery,
                settings.webhooks.concurrency,
                idle=True,  # retries come back through the delay topics, seconds apart
            ),
        ]
        await run_service(settings, producer, specs, stop)
