"""The offload pools' durable state: every provider batch and each of its lines on a compacted
topic (`offload`), written before Redis, which is only its view. When the view's mark is gone
(a flush, a restart without persistence) the topic is read again into Redis before any batch is
read or any line is taken, so a Redis loss neither forgets a provider batch nor submits its
lines twice.

    line:<batch id>:<request id>  the request envelope   written first (a batch's lines)
    batch:<batch id>              `ProviderBatch` JSON   then, and again on each change of
                                                         state or provider id
    tombstones                    batch first, then its lines, when the batch is done

Read back in order: a `batch:` record has all its lines before it; lines without a live batch
(a pool died while saving it: those lines were never committed, so they come again) are left
out. Poll times live only in Redis: after a rebuild every batch is polled at once.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from aibroker.kafka.clients import decode, encode, make_consumer
from aibroker.kafka.producer import Producer
from aibroker.settings import KafkaSettings
from aibroker.stores.offload import ProviderBatch, RedisOffloadStore
from schemas.envelopes import Request

log = logging.getLogger(__name__)


def batch_key(batch_id: str) -> bytes:
    return f"batch:{batch_id}".encode()


def line_key(batch_id: str, request_id: str) -> bytes:
    return f"line:{batch_id}:{request_id}".encode()


class Journal:
    """What the topic holds, folded: the live batches and their lines."""

    def __init__(self) -> None:
        self.batches: dict[str, ProviderBatch] = {}
        self.lines: dict[str, dict[str, Request]] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record, in log order; a tombstone (no value) forgets what its key named."""
        kind, _, rest = (key or b"").decode().partition(":")
        try:
            if kind == "batch":
                if value is None:
                    self.batches.pop(rest, None)
                else:
                    self.batches[rest] = ProviderBatch.model_validate_json(value)
            elif kind == "line":
                batch_id, _, request_id = rest.partition(":")
                held = self.lines.setdefault(batch_id, {})
                if value is None:
                    held.pop(request_id, None)
                else:
                    held[request_id] = decode(Request, value)
        except ValidationError:
            log.warning("offload record %r undecodable: skipped", key)

    def live(self) -> list[tuple[ProviderBatch, list[Request]]]:
        """Each batch still in flight with its lines."""
        return [(b, list(self.lines.get(i, {}).values())) for i, b in self.batches.items()]


class DurableOffloadStore:
    """An `OffloadStore`: each change to the topic (acknowledged by every replica) before its
    Redis view, and every read after the view was found whole or rebuilt."""

    def __init__(
        self,
        view: RedisOffloadStore,
        producer: Producer,
        kafka: KafkaSettings,
        topic: str,
        *,
        ttl_s: int,
    ) -> None:
        self.view = view
        self.producer = producer
        self.kafka = kafka
        self.topic = topic
        self.ttl_s = ttl_s
        self._written: dict[str, tuple[str, str | None, float | None]] = {}
        """Per batch, what its last record says (state, provider id, create tried): only a
        change of these is written again, not every poll."""
        self._rebuilding = asyncio.Lock()
        self.rebuilds = 0

    async def add(self, batch: ProviderBatch, requests: list[Request], ttl_s: int) -> None:
        await self.whole()
        sends = [
            await self.producer.send(self.topic, encode(r), line_key(batch.id, r.id), partition=0)
            for r in requests
        ]
        await asyncio.gather(*sends)
        await self._write_batch(batch)
        await self.view.add(batch, requests, ttl_s)

    async def save(self, batch: ProviderBatch) -> None:
        if self._written.get(batch.id) != _durable(batch):
            await self._write_batch(batch)
        await self.view.save(batch)

    async def in_flight(self, provider: str) -> list[ProviderBatch]:
        await self.whole()
        return await self.view.in_flight(provider)

    async def requests(self, batch: ProviderBatch) -> list[Request]:
        await self.whole()
        return await self.view.requests(batch)

    async def taken_by(self, request_id: str, provider: str) -> str | None:
        await self.whole()
        return await self.view.taken_by(request_id, provider)

    async def cancelled(self, request_ids: list[str]) -> set[str]:
        return await self.view.cancelled(request_ids)

    async def claimed(self, provider: str) -> set[str]:
        await self.whole()
        return await self.view.claimed(provider)

    async def finish(self, batch: ProviderBatch) -> None:
        """The batch's tombstone, then its lines' (lines without a batch are dropped on a
        rebuild anyway), then the view forgets it."""
        requests = await self.view.requests(batch)
        await self.producer.send_and_wait(self.topic, None, batch_key(batch.id), partition=0)
        sends = [
            await self.producer.send(self.topic, None, line_key(batch.id, r.id), partition=0)
            for r in requests
        ]
        await asyncio.gather(*sends)
        self._written.pop(batch.id, None)
        await self.view.finish(batch)

    async def whole(self) -> None:
        """Rebuild the view from the topic if its mark is gone (one rebuild at a time; those
        who waited on it find the mark)."""
        if await self.view.intact():
            return
        async with self._rebuilding:
            if not await self.view.intact():
                await self.rebuild()

    async def rebuild(self) -> int:
        """Read the whole topic, write each live batch and its lines into Redis, then mark the
        view whole; how many batches it restored."""
        journal = Journal()
        for record in await self._read_all():
            journal.apply(record.key, record.value)
        live = journal.live()
        for batch, requests in live:
            await self.view.add(batch, requests, self.ttl_s)
            self._written[batch.id] = _durable(batch)
        await self.view.mark_intact()
        self.rebuilds += 1
        log.warning("offload view rebuilt from %s: %d provider batches", self.topic, len(live))
        return len(live)

    async def _write_batch(self, batch: ProviderBatch) -> None:
        value = batch.model_dump_json().encode()
        await self.producer.send_and_wait(self.topic, value, batch_key(batch.id), partition=0)
        self._written[batch.id] = _durable(batch)

    async def _read_all(self) -> list[ConsumerRecord[bytes, bytes]]:
        consumer = make_consumer(self.kafka, group_id=None)
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            records: list[ConsumerRecord[bytes, bytes]] = []
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                records += [r for r in batch.get(tp, []) if r.offset < end]
            return records
        finally:
            await asyncio.wait_for(consumer.stop(), 10)


def _durable(batch: ProviderBatch) -> tuple[str, str | None, float | None]:
    return (batch.state.value, batch.provider_id, batch.create_tried_at)
