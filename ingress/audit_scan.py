"""One page of the audit log: the `audit` topic read in order from an offset until the page is
full, the log or the time window ends, or the page's scan budget is spent, whichever comes
first. Whatever the topic holds (it keeps 400 days), a call reads at most `Budget.records`
records for at most `Budget.seconds`, and says where the next call goes on."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from aibroker.kafka.clients import decode, make_consumer
from aibroker.settings import KafkaSettings
from schemas.audit import AuditEntry

FETCH_BYTES = 4 * 1024 * 1024
"""A scan's fetch size: sequential reads in large fetches cost ~4 µs a record, not ~100."""
CHUNK = 1000
"""Records taken from the fetched data at a time (a short page stops early)."""


@dataclass(frozen=True)
class Budget:
    """What one call may spend before it answers with what it found."""

    records: int = 50_000
    """Records read at most, matching or not (about 0.3 s on one core)."""
    seconds: float = 1.0
    """Time spent reading at most, however slow the broker answers."""


@dataclass(frozen=True)
class Filters:
    """The listing's filters (None: any). The record key is the entry's tenant (as
    `Publisher.audit` writes it), so a tenant's page skips other tenants' records undecoded."""

    tenant: str | None = None
    actor: str | None = None
    action: str | None = None
    claimed_subject: str | None = None
    since: float | None = None
    until: float | None = None

    def keep(self, record: ConsumerRecord[bytes, bytes]) -> AuditEntry | None:
        if self.tenant is not None and record.key not in (None, self.tenant.encode()):
            return None
        try:
            entry = decode(AuditEntry, record.value)
        except (ValidationError, ValueError):
            return None
        matched = entry.matches(
            tenant=self.tenant,
            actor=self.actor,
            action=self.action,
            since=self.since,
            until=self.until,
            claimed_subject=self.claimed_subject,
        )
        return entry if matched else None


@dataclass
class Page:
    entries: list[AuditEntry] = field(default_factory=list)
    last: int = -1
    """The last offset read: the next page starts after it."""
    more: bool = False
    """Whether records of the window lie after `last`."""


@contextlib.asynccontextmanager
async def audit_reader(settings: KafkaSettings, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer without a group, assigned partition 0 of `topic` at once (so Kafka's time
    index answers in ~10 ms, not after a metadata retry of 100 ms)."""
    consumer = make_consumer(
        settings,
        group_id=None,
        max_partition_fetch_bytes=max(FETCH_BYTES, settings.max_message_bytes),
        fetch_max_bytes=max(FETCH_BYTES, settings.max_message_bytes),
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        yield consumer
    finally:
        await consumer.stop()


async def scan(
    consumer: AIOKafkaConsumer,
    topic: str,
    start: int,
    filters: Filters,
    limit: int,
    budget: Budget,
) -> Page:
    """Up to `limit` matching entries of partition 0 from offset `start`, within `budget`
    (`consumer` from `audit_reader`)."""
    tp = TopicPartition(topic, 0)
    end = (await consumer.end_offsets([tp]))[tp]
    first = max(start, (await consumer.beginning_offsets([tp]))[tp])
    page = Page(last=start - 1)
    if first >= end:
        return page
    consumer.seek(tp, first)
    deadline = time.monotonic() + budget.seconds
    scanned = 0
    while page.last + 1 < end:
        left_s = deadline - time.monotonic()
        if scanned >= budget.records or left_s <= 0:
            page.more = True
            return page
        batch = await consumer.getmany(
            tp,
            timeout_ms=max(1, int(left_s * 1000)),
            max_records=min(CHUNK, budget.records - scanned),
        )
        if not batch:  # past offsets no record holds (control batches), if any
            page.last = max(page.last, await consumer.position(tp) - 1)
        for record in batch.get(tp, []):
            if filters.until is not None and record.timestamp / 1000 >= filters.until:
                return page  # the window ends here (records are in time order)
            page.last, scanned = record.offset, scanned + 1
            entry = filters.keep(record)
            if entry is not None:
                page.entries.append(entry)
                if len(page.entries) == limit:
                    page.more = page.last + 1 < end
                    return page
    return page
