"""Consumer-group lag of a topic: the group's committed offsets against the partitions' end
offsets. On Apache Kafka the committed offsets come from the admin API (OffsetFetch, what KEDA
reads); Tansu fails that request, so there a probe consumer of the group asks instead."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from aibroker.kafka.clients import make_admin, make_consumer, topic_partitions
from aibroker.settings import KafkaSettings

RETRIES = 5
"""Tries of an offset fetch that meets a retriable error (a group's coordinator not found yet)."""


def lag_of(
    ends: dict[TopicPartition, int],
    starts: dict[TopicPartition, int],
    committed: dict[TopicPartition, int | None],
) -> int:
    """Records not yet done: a partition the group never committed counts from its start."""
    total = 0
    for tp, end in ends.items():
        done = committed.get(tp)
        total += max(0, end - (starts[tp] if done is None else done))
    return total


class LagReader:
    """One consumer outside any group reads end offsets; committed offsets come from the admin
    client (Kafka) or from an idle consumer per group that never joins it (Tansu), so reading
    lag never triggers a rebalance."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._admin: AIOKafkaAdminClient | None = None
        self._probes: dict[str | None, AIOKafkaConsumer] = {}

    async def lag(self, topic: str, group: str) -> int:
        offsets = await self._probe(None)
        partitions = await topic_partitions(offsets, topic)
        if not partitions:
            return 0
        ends = await offsets.end_offsets(partitions)
        starts = await offsets.beginning_offsets(partitions)
        return lag_of(ends, starts, await self._committed(group, partitions))

    async def _committed(
        self, group: str, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        if self._settings.engine == "kafka":
            admin = await self._admin_client()
            for attempt in range(RETRIES):
                try:
                    found = await admin.list_consumer_group_offsets(group, partitions=partitions)
                    break
                except KafkaError as exc:  # the coordinator moving, or being created
                    if not exc.retriable or attempt == RETRIES - 1:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
            return {tp: (meta.offset if meta.offset >= 0 else None) for tp, meta in found.items()}
        probe = await self._probe(group)
        return {tp: await probe.committed(tp) for tp in partitions}

    async def _admin_client(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = make_admin(self._settings)
            await admin.start()
            self._admin = admin
        return self._admin

    async def _probe(self, group: str | None) -> AIOKafkaConsumer:
        if group not in self._probes:
            probe = make_consumer(self._settings, group_id=group)
            await probe.start()
            self._probes[group] = probe
        return self._probes[group]

    async def aclose(self) -> None:
        for probe in self._probes.values():
            await probe.stop()
        self._probes.clear()
        if self._admin is not None:
            await self._admin.close()
            self._admin = None


@contextlib.asynccontextmanager
async def lag_reader(settings: KafkaSettings) -> AsyncIterator[LagReader]:
    reader = LagReader(settings)
    try:
        yield reader
    finally:
        await reader.aclose()
