"""What a request costs Kafka and Redis, counted during a benchmark run (for the capacity
model, docs/performance/capacity.md).

`Footprint.take` reads, for one stack, the records and bytes on each of its topics (end
offsets, and the log size the broker reports) and Redis's per-command counters; the
difference of two readings divided by the requests served is the cost of one request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from redis.asyncio import Redis


@dataclass
class Footprint:
    records: dict[str, int]
    """End offsets summed over each topic's partitions, by topic (prefix removed)."""
    redis_calls: dict[str, int]
    """Redis `INFO commandstats` calls, by command."""

    @classmethod
    async def take(cls, bootstrap: str, prefix: str, redis_url: str) -> Footprint:
        return cls(await _records(bootstrap, prefix), await _redis_calls(redis_url))

    def per_request(self, later: Footprint, requests: int) -> dict[str, Any]:
        n = max(requests, 1)
        records = {
            topic: round((count - self.records.get(topic, 0)) / n, 2)
            for topic, count in later.records.items()
            if count > self.records.get(topic, 0)
        }
        calls = {
            command: round((count - self.redis_calls.get(command, 0)) / n, 2)
            for command, count in later.redis_calls.items()
            if count > self.redis_calls.get(command, 0)
        }
        return {
            "kafka_records": dict(sorted(records.items())),
            "kafka_records_total": round(sum(records.values()), 2),
            "redis_calls": dict(sorted(calls.items(), key=lambda kv: -kv[1])),
            "redis_calls_total": round(sum(calls.values()), 2),
        }


async def _records(bootstrap: str, prefix: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], p["partition"])
        for topic in described
        for p in topic["partitions"]
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    counts: dict[str, int] = {}
    for tp, end in ends.items():
        name = tp.topic.removeprefix(prefix)
        counts[name] = counts.get(name, 0) + end
    return counts


async def _redis_calls(url: str) -> dict[str, int]:
    redis = Redis.from_url(url, decode_responses=True)
    try:
        stats = await asyncio.wait_for(redis.info("commandstats"), 5)
    finally:
        await redis.aclose()
    return {
        name.removeprefix("cmdstat_"): int(fields["calls"])
        for name, fields in stats.items()
        if isinstance(fields, dict)
    }
