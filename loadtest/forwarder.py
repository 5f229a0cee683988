"""The dispatcher benchmark's baseline: the same worker runtime, consuming the interactive lane
and producing each record unchanged to `mock`'s dispatch topic, deciding nothing.

    python -m loadtest.forwarder      (settings from AIBROKER_* like every service)
"""

from __future__ import annotations

import asyncio

import uvloop
from aiokafka.structs import ConsumerRecord

from aibroker.kafka.clients import running_producer
from aibroker.runtime.service import WorkerSpec, run_workers, stop_on_signals
from aibroker.settings import Settings, load_settings
from topics.catalog import TopicNames


async def run(settings: Settings, stop: asyncio.Event) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    dest = names.dispatch("mock")
    async with running_producer(settings.kafka) as producer:

        async def forward(record: ConsumerRecord[bytes, bytes]) -> None:
            await producer.send_and_wait(dest, record.value, key=record.key)

        spec = WorkerSpec("forwarder", [names.requests_interactive], "aib-forwarder", forward, 256)
        await run_workers(
            settings.kafka, producer, [spec], stop, drain_timeout_s=5, dlq_topic=names.dlq
        )


def main() -> None:
    settings = load_settings()

    async def serve() -> None:
        await run(settings, stop_on_signals())

    uvloop.run(serve())


if __name__ == "__main__":
    main()
