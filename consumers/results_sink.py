"""`aibroker results`: `results` → Redis (state, result, completion notice). First result wins."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.structs import ConsumerRecord
from redis.exceptions import RedisError

from aibroker.errors import Unavailable
from aibroker.kafka import decode, running_producer
from aibroker.redis import connect
from aibroker.runtime import WorkerSpec, run_workers
from aibroker.settings import Settings
from aibroker.store import RequestStore
from schemas.envelopes import Result
from topics.catalog import TopicNames

log = logging.getLogger(__name__)


class ResultsSink:
    def __init__(self, store: RequestStore) -> None:
        self.store = store

    async def on_result(self, record: ConsumerRecord[bytes, bytes]) -> None:
        result = decode(Result, record.value)
        try:
            first = await self.store.finish(result)
        except RedisError as exc:
            raise Unavailable(f"redis unavailable: {exc!r}") from exc
        if not first:
            log.info("dropped a duplicate result for %s", result.id)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    async with connect(settings.redis) as redis, running_producer(settings.kafka) as producer:
        sink = ResultsSink(RequestStore(redis, settings.redis.ttl_s))
        spec = WorkerSpec("results", [names.results], "aib-results", sink.on_result, 512)
        await run_workers(
            settings.kafka,
            producer,
            [spec],
            stop,
            drain_timeout_s=settings.consumer.drain_timeout_s,
            dlq_topic=names.dlq,
        )
