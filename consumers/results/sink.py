"""`aibroker results`: `results` → Redis (state, result, completion notice; first result wins)
and the request's quota settled (concurrency slot freed, tokens reconciled, cost spent, and
the tenant's budget thresholds announced as they are crossed); `usage` → the usage ledger."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.structs import ConsumerRecord

from aibroker.budget import reached, threshold_messages
from aibroker.control.plane import control_plane
from aibroker.kafka.clients import decode, running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.runtime.service import WorkerSpec, run_service
from aibroker.settings import Settings
from aibroker.stores.cache import TtlCache
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.quota import Quota, RedisQuota, month
from aibroker.stores.redis import connect
from aibroker.stores.responses import RedisResponseStore, ResponseStore
from aibroker.stores.results import RedisRequestStore, RequestStore
from aibroker.stores.results_view import ResultsView
from aibroker.stores.story import RedisStory
from aibroker.stores.tenants import Tenant, active_endpoints
from aibroker.stores.usage import RedisUsageLedger
from aibroker.telemetry import metrics
from consumers.results.rebuild import ResultsRebuild
from consumers.results.usage import UsageCounter
from schemas.envelopes import Result
from topics.apply import apply_topics
from topics.catalog import TopicNames, config_topic_spec

log = logging.getLogger(__name__)


class ResultsSink:
    def __init__(
        self,
        store: RequestStore,
        quota: Quota,
        tenants: TtlCache[Tenant | None],
        publisher: Publisher,
        responses: ResponseStore | None = None,
    ) -> None:
        self.store = store
        self.responses = responses
        """Stored responses: a response's output is kept for `previous_response_id`."""
        self.quota = quota
        self.tenants = tenants
        self.publisher = publisher
        self._announced: set[tuple[str, str, int]] = set()
        """Thresholds this process knows are announced (tenant, month, percent): each is
        asked of Redis once per process, not once per result."""

    async def on_result(self, record: ConsumerRecord[bytes, bytes]) -> None:
        result = decode(Result, record.value)
        first = await self.store.finish(result)  # Redis down: the worker retries in place
        if self.responses is not None and result.id.startswith("resp_") and result.response:
            await self.responses.ended(result.id, result.response)
        usage = result.usage
        tokens = (
            (usage.total_tokens or usage.prompt_tokens + usage.completion_tokens) if usage else None
        )
        if result.cache is not None and result.cache.served:
            tokens = 0  # no provider call: the tokens admission set aside are given back
        now = time.time()
        await self.quota.settle(result.id, result.tenant, tokens, result.cost_usd, now)
        if result.cost_usd:
            await self._warn(result.tenant, now)
        if first:
            record_finished(result)
        else:
            log.info("dropped a duplicate result for %s", result.id)

    async def _warn(self, name: str, now: float) -> None:
        """Announce each budget threshold the tenant's spend has reached, once a month."""
        tenant = await self.tenants.get(name)
        budget = tenant.limits.budget_usd_month if tenant else None
        if tenant is None or budget is None:
            return
        spent = await self.quota.spend(quota_scope(name), now)
        metrics.BUDGET_USED.labels(name).set(float(spent / budget) if budget else 1.0)
        for pct in reached(spent, budget):
            key, scope = (name, month(now), pct), quota_scope(name)
            if key in self._announced or await self.quota.warned(scope, month(now), pct):
                self._announced.add(key)
                continue
            # Written before it is marked: a crash between the two repeats the messages with
            # the same webhook-id (receivers dedupe), it never loses them.
            endpoints = active_endpoints(tenant)
            for delivery in threshold_messages(
                name, month(now), pct, spent, budget, endpoints, now
            ):
                await self.publisher.deliver(delivery)
            await self.quota.mark_warned(scope, month(now), pct)
            self._announced.add(key)
            log.info("tenant %s reached %d%% of its monthly budget", name, pct)


def record_finished(result: Result) -> None:
    provider, model = (
        (result.served_by.provider, result.served_by.model)
        if result.served_by
        else ("none", "none")
    )
    metrics.FINISHED.labels(provider, model, result.status.value).inc()
    for stage, ms in (
        ("queue", result.queued_ms),
        ("service", result.service_ms),
        ("total", result.total_ms),
    ):
        if ms is not None:
            metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000)
    if result.usage:
        for direction, tokens in (
            ("prompt", result.usage.prompt_tokens),
            ("completion", result.usage.completion_tokens),
        ):
            metrics.TOKENS.labels(result.tenant, provider, model, direction).inc(tokens)
    if result.cost_usd:
        metrics.COST.labels(result.tenant, provider, model).inc(float(result.cost_usd))


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """The sink, and Redis rebuilt from Kafka when it lost its data: the control plane's view
    (kept here as in every ingress) and request states and results (`rebuild.py`)."""
    names = TopicNames(settings.kafka.topic_prefix)
    await apply_topics(settings.kafka, [config_topic_spec(names)])
    async with (
        connect(settings.redis) as redis,
        running_producer(settings.kafka) as producer,
        control_plane(settings.kafka, names.config, redis, producer) as plane,
    ):
        store = RedisRequestStore(redis, settings.redis.ttl_s)
        sink = ResultsSink(
            store,
            RedisQuota(redis, settings.quota.lease_s),
            TtlCache(plane.tenants.get, settings.quota.cache_ttl_s),
            Publisher(producer, names),
            RedisResponseStore(redis, settings.responses),
        )
        usage = UsageCounter(RedisUsageLedger(redis), RedisStory(redis, settings.redis.ttl_s))
        specs = [
            WorkerSpec("results", [names.results], "aib-results", sink.on_result, 512),
            WorkerSpec("usage", [names.usage], "aib-usage", usage.on_usage, 256, idle=True),
        ]
        ttl_s = settings.redis.ttl_s
        rebuild = ResultsRebuild(settings.kafka, names, store, ResultsView(redis, ttl_s), ttl_s)
        await run_service(settings, producer, specs, stop, rebuild.watch())
