"""Running a service process: signals to a stop event, and a set of Kafka workers until it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from aibroker.kafka.clients import make_consumer
from aibroker.kafka.producer import Producer
from aibroker.runtime.worker import Due, Handler, KafkaWorker, WorkerConfig
from aibroker.settings import KafkaSettings, Settings
from topics.catalog import TopicNames

log = logging.getLogger(__name__)


EXIT_MARGIN_S = 5.0
"""Past the drain timeout, how long leaving the group and closing clients may take."""


def stop_on_signals(deadline_s: float | None = None) -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: the process then drains and exits. A second signal
    means exit now; so does `deadline_s` after the first, whatever the process is waiting on
    (a Kafka or Redis that is gone). Work not committed is redelivered: that is what the
    offsets are for."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            exit_now("a second signal came")
        stop.set()
        if deadline_s is not None:
            exit_after(deadline_s, f"it was still stopping {deadline_s:.0f}s after the signal")

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    return stop


def exit_after(seconds: float, why: str) -> asyncio.TimerHandle:
    """End the process `seconds` from now unless it has ended (a bound on shutdown)."""
    return asyncio.get_running_loop().call_later(seconds, exit_now, why)


def exit_now(why: str) -> None:
    log.warning("exiting now: %s; uncommitted work will be redelivered", why)
    logging.shutdown()
    os._exit(1)


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    topics: list[str]
    group_id: str
    handler: Handler
    concurrency: int
    idle: bool = False
    """Rarely busy topics: poll with the longer idle fetch wait."""
    due: Due | None = None
    """When each record may be handled (the delay topics; see `WorkerConfig.due`)."""


async def run_workers(
    kafka: KafkaSettings,
    producer: Producer,
    specs: list[WorkerSpec],
    stop: asyncio.Event,
    *,
    drain_timeout_s: float,
    dlq_topic: str,
    log_bodies: bool = False,
) -> None:
    """Start one consumer per spec and run them all until `stop`; then drain and leave."""
    workers: list[KafkaWorker] = []
    try:
        for spec in specs:
            wait = kafka.fetch_wait_ms(idle=spec.idle)
            consumer = make_consumer(kafka, group_id=spec.group_id, fetch_max_wait_ms=wait)
            config = WorkerConfig(
                spec.name,
                spec.concurrency,
                drain_timeout_s,
                dlq_topic,
                group=spec.group_id,
                log_bodies=log_bodies,
                due=spec.due,
            )
            worker = KafkaWorker(consumer, producer, spec.handler, config)
            consumer.subscribe(spec.topics, listener=worker.listener())
            workers.append(worker)
        await asyncio.gather(*(w.consumer.start() for w in workers))
        await asyncio.gather(*(w.run(stop) for w in workers))
    finally:
        # Leaving the groups may wait on a broker that is gone; the offsets are committed.
        stopping = asyncio.gather(*(w.consumer.stop() for w in workers), return_exceptions=True)
        try:
            await asyncio.wait_for(stopping, EXIT_MARGIN_S)
        except TimeoutError:
            log.warning("consumers not stopped within %.0fs; leaving anyway", EXIT_MARGIN_S)


async def run_service(
    settings: Settings,
    producer: Producer,
    specs: list[WorkerSpec],
    stop: asyncio.Event,
    *background: Coroutine[Any, Any, None],
) -> None:
    """A service's workers with its settings (drain time, DLQ), and its background loops
    alongside them, cancelled once the workers have drained."""
    tasks = [asyncio.create_task(loop) for loop in background]
    try:
        await run_workers(
            settings.kafka,
            producer,
            specs,
            stop,
            drain_timeout_s=settings.consumer.drain_timeout_s,
            dlq_topic=TopicNames(settings.kafka.topic_prefix).dlq,
            log_bodies=settings.log_bodies,
        )
    finally:
        for task in tasks:
            task.cancel()
