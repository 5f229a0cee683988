"""Consumer-group lag of a topic, read the way every Kafka-protocol broker answers: the group's
committed offsets (a consumer's `committed()`, not the admin API, which Tansu refuses) against
the partitions' end offsets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from aibroker.kafka import make_consumer
from aibroker.settings import KafkaSettings


class LagReader:
    """One idle consumer per group asks for that group's committed offsets; it never joins
    the group (no subscription), so reading lag never triggers a rebalance."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._probes: dict[str, AIOKafkaConsumer] = {}

    async def lag(self, topic: str, group: str) -> int:
        probe = await self._probe(group)
        await probe.topics()  # refreshes metadata, so new topics' partitions are known
        partitions = [TopicPartition(topic, p) for p in probe.partitions_for_topic(topic) or ()]
        if not partitions:
            return 0
        ends = await probe.end_offsets(partitions)
        starts = await probe.beginning_offsets(partitions)
        total = 0
        for tp in partitions:
            committed = await probe.committed(tp)
            total += max(0, ends[tp] - (starts[tp] if committed is None else committed))
        return total

    async def _probe(self, group: str) -> AIOKafkaConsumer:
        if group not in self._probes:
            probe = make_consumer(self._settings, group_id=group)
            await probe.start()
            self._probes[group] = probe
        return self._probes[group]

    async def aclose(self) -> None:
        for probe in self._probes.values():
            await probe.stop()
        self._probes.clear()


@contextlib.asynccontextmanager
async def lag_reader(settings: KafkaSettings) -> AsyncIterator[LagReader]:
    reader = LagReader(settings)
    try:
        yield reader
    finally:
        await reader.aclose()
