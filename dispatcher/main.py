"""`aibroker dispatcher`: the request lanes, the outcomes and the delay topics in one process."""

from __future__ import annotations

import asyncio

from aibroker.kafka import running_producer
from aibroker.publish import Publisher
from aibroker.routes import build_route_table
from aibroker.runtime import WorkerSpec, run_workers
from aibroker.settings import Settings
from dispatcher.policy import RetryPolicy
from dispatcher.service import Dispatcher
from topics.catalog import RETRY_DELAYS, TopicNames


async def run(settings: Settings, stop: asyncio.Event) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    cfg = settings.dispatcher
    policy = RetryPolicy(cfg.max_attempts, cfg.backoff_base_s, cfg.backoff_max_s)
    async with running_producer(settings.kafka) as producer:
        dispatcher = Dispatcher(Publisher(producer, names), build_route_table(settings), policy)
        specs = [
            WorkerSpec(
                "dispatcher.requests",
                [names.requests_interactive, names.requests_batch],
                "aib-dispatcher",
                dispatcher.on_request,
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
            WorkerSpec(
                "dispatcher.delay",
                [names.retry(d) for d in RETRY_DELAYS],
                "aib-delay",
                dispatcher.on_delayed,
                1000,
                idle=True,
            ),
        ]
        await run_workers(
            settings.kafka,
            producer,
            specs,
            stop,
            drain_timeout_s=settings.consumer.drain_timeout_s,
            dlq_topic=names.dlq,
        )
