"""The usage consumer (run by `aibroker results`): every event on the `usage` topic into the
usage ledger's hourly counters, once. An event is known by its id (the record's coordinates
for events from before ids), so a restart, a rebalance or a replay of the topic from its
start counts nothing twice."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from aibroker.kafka.clients import decode
from aibroker.stores.story import Story
from aibroker.stores.usage import UsageLedger
from aibroker.telemetry import metrics
from schemas.envelopes import UsageEvent


class UsageCounter:
    def __init__(self, ledger: UsageLedger, story: Story | None = None) -> None:
        self.ledger = ledger
        self.story = story
        """Where each call is also told, for its request's story (`aibroker/stores/story.py`)."""

    async def on_usage(self, record: ConsumerRecord[bytes, bytes]) -> None:
        event = decode(UsageEvent, record.value)
        event_id = event.id or f"{record.topic}:{record.partition}:{record.offset}"
        counted = await self.ledger.count(event_id, event)  # Redis down: retried in place
        metrics.USAGE_EVENTS.labels("counted" if counted else "seen_before").inc()
        if counted and self.story is not None:
            await self.story.called(event)
