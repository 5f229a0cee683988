"""Reading a one-partition log topic (the DLQ, the audit log) as the admin API pages it: from
an offset, or from the first record at or after a time."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

MAX_OFFSET = 2**63 - 1
"""Kafka offsets are signed 64-bit: a larger one is a client's mistake (400), not a crash."""


async def read_from(
    consumer: AIOKafkaConsumer, topic: str, start: int, limit: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Up to `limit` records of partition 0 from offset `start` (a started consumer without
    a group); fewer at the end of the log."""
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    end = (await consumer.end_offsets([tp]))[tp]
    first = max(start, (await consumer.beginning_offsets([tp]))[tp])
    if first >= end:
        return []
    consumer.seek(tp, first)
    records: list[ConsumerRecord[bytes, bytes]] = []
    while len(records) < limit and (not records or records[-1].offset + 1 < end):
        batch = await consumer.getmany(tp, timeout_ms=2000, max_records=limit - len(records))
        if not batch:
            break
        records += batch.get(tp, [])
    return records


async def offset_at(consumer: AIOKafkaConsumer, topic: str, at_s: float) -> int:
    """The offset of partition 0's first record written at or after `at_s` (the end of the
    log when there is none)."""
    tp = TopicPartition(topic, 0)
    found = (await consumer.offsets_for_times({tp: int(at_s * 1000)}))[tp]
    if found is not None:
        return int(found.offset)
    return int((await consumer.end_offsets([tp]))[tp])
