"""`aibroker results`: `results` → Redis (state, result, completion notice; first result wins)
and the request's quota settled (concurrency slot freed, tokens reconciled, cost spent)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.structs import ConsumerRecord

from aibroker.kafka.clients import decode, running_producer
from aibroker.runtime.service import WorkerSpec, run_service
from aibroker.settings import Settings
from aibroker.stores.quota import Quota, RedisQuota
from aibroker.stores.redis import connect
from aibroker.stores.results import RedisRequestStore, RequestStore
from aibroker.telemetry import metrics
from schemas.envelopes import Result
from topics.catalog import TopicNames

log = logging.getLogger(__name__)


class ResultsSink:
    def __init__(self, store: RequestStore, quota: Quota) -> None:
        self.store = store
        self.quota = quota

    async def on_result(self, record: ConsumerRecord[bytes, bytes]) -> None:
        result = decode(Result, record.value)
        first = await self.store.finish(result)  # Redis down: the worker retries in place
        usage = result.usage
        tokens = (
            (usage.total_tokens or usage.prompt_tokens + usage.completion_tokens) if usage else None
        )
        await self.quota.settle(result.id, tokens, result.cost_usd, time.time())
        if first:
            record_finished(result)
        else:
            log.info("dropped a duplicate result for %s", result.id)


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
    names = TopicNames(settings.kafka.topic_prefix)
    async with connect(settings.redis) as redis, running_producer(settings.kafka) as producer:
        sink = ResultsSink(
            RedisRequestStore(redis, settings.redis.ttl_s),
            RedisQuota(redis, settings.quota.lease_s),
        )
        spec = WorkerSpec("results", [names.results], "aib-results", sink.on_result, 512)
        await run_service(settings, producer, [spec], stop)
