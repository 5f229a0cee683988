"""Kafka records for handler tests: one made as the worker would hand it over, and reading
what a handler wrote."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

from aibroker.kafka.clients import encode


def record(
    envelope: BaseModel,
    key: str,
    *,
    topic: str = "topic",
    offset: int = 0,
    headers: list[tuple[str, bytes]] | None = None,
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic, 0, offset, 0, 0, key.encode(), encode(envelope), None, 0, 0, headers or []
    )


async def read(
    consumer: AIOKafkaConsumer, count: int, timeout_s: float = 20
) -> list[ConsumerRecord[bytes, bytes]]:
    """At least `count` records, or what came within `timeout_s`."""
    got: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            got.extend(records)
    return got
