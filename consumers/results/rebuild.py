"""Request states and results rebuilt from Kafka when Redis lost them: `results` replayed from
the state TTL ago through the sink's own first-result-wins write, then the requests lanes, so
that a request accepted before the loss and not ended yet reads as queued (its own later states
win). A response its tenant deleted (a `response.delete` entry in the audit log,
`aibroker.responses_deleted`) is left out, and deleted again should it have come back while
the rebuild ran. Quota and usage are not replayed: they were counted once already.

The results sink runs `watch` (every `check_s`, a rebuild when a mark is missing: a flush, a
restart without persistence, a shard replaced); `aibroker redis-rebuild` runs `rebuild`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import ValidationError
from redis.exceptions import RedisError

from aibroker.kafka.clients import make_consumer, topic_partitions
from aibroker.responses_deleted import deleted_id
from aibroker.settings import KafkaSettings
from aibroker.stores.results import RequestStore
from aibroker.stores.results_view import ResultsView
from schemas.audit import AuditEntry
from schemas.envelopes import Result
from topics.catalog import TopicNames

log = logging.getLogger(__name__)

CHECK_S = 1.0
"""How often the sink looks for marks Redis lost."""
CHUNK = 500
"""Records written at once (the client pipelines them)."""

Handle = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[bool]]


@dataclass(frozen=True)
class Rebuilt:
    results: int
    """Results written (the first for their request since the loss)."""
    queued: int
    """Requests with no state, and no result in `results`, read as queued again."""
    seconds: float


class ResultsRebuild:
    def __init__(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        store: RequestStore,
        view: ResultsView,
        ttl_s: int,
    ) -> None:
        self._kafka = kafka
        self._names = names
        self._store = store
        self._view = view
        self._ttl_s = ttl_s
        self.rebuilds = 0
        self._deleted: set[str] = set()
        """Responses deleted by their tenants (from the audit log), never brought back."""

    async def watch(self, check_s: float = CHECK_S) -> None:
        """Rebuild whenever a mark is missing, until cancelled (at start too: a first start
        finds none, and replays what the TTL still covers once)."""
        while True:
            try:
                if not await self._view.intact():
                    await self.rebuild()
            except RedisError as exc:
                log.warning("results rebuild not done (%r); trying again", exc)
            await asyncio.sleep(check_s)

    async def rebuild(self) -> Rebuilt:
        started = time.monotonic()
        await self._view.mark_intact()
        since_ms = int((time.time() - self._ttl_s) * 1000)
        self._deleted.clear()
        await self._replay([self._names.audit], since_ms, self._deletion)
        results = await self._replay([self._names.results], since_ms, self._result)
        lanes = [self._names.requests_interactive, self._names.requests_batch]
        queued = await self._replay(lanes, since_ms, self._queued)
        await self._replay([self._names.audit], since_ms, self._deletion)  # deleted meanwhile
        for request_id in self._deleted:
            await self._store.delete(request_id)
        rebuilt = Rebuilt(results, queued, time.monotonic() - started)
        self.rebuilds += 1
        log.warning(
            "Redis had lost request states: %d results and %d queued requests rebuilt in %.1fs",
            results,
            queued,
            rebuilt.seconds,
        )
        return rebuilt

    async def _deletion(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        try:
            entry = AuditEntry.model_validate_json(record.value or b"")
        except ValidationError:
            return False
        if (deleted := deleted_id(entry)) is not None:
            self._deleted.add(deleted)
        return False

    async def _result(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        try:
            result = Result.model_validate_json(record.value or b"")
        except ValidationError:
            return False  # the sink sent it to the DLQ when it met it
        if result.id in self._deleted:
            return False
        return await self._store.finish(result)

    async def _queued(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        try:
            doc = orjson.loads(record.value or b"")
            request_id, tenant = str(doc["id"]), str(doc["tenant"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return False
        if request_id in self._deleted:
            return False
        return await self._view.queued_unless_known(request_id, tenant)

    async def _replay(self, topics: list[str], since_ms: int, handle: Handle) -> int:
        """Every record of `topics` written since `since_ms`, up to their ends now; how many
        `handle` said it wrote."""
        consumer = make_consumer(self._kafka, group_id=None)
        await consumer.start()
        try:
            parts = [tp for topic in topics for tp in await topic_partitions(consumer, topic)]
            if not parts:
                return 0
            consumer.assign(parts)
            ends = await _seek_since(consumer, parts, since_ms)
            written = 0
            while remaining := [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=CHUNK)
                records = [r for tp, rs in batches.items() for r in rs if r.offset < ends[tp]]
                done = await asyncio.gather(*(handle(r) for r in records))
                written += sum(done)
            return written
        finally:
            await asyncio.wait_for(consumer.stop(), 10)


async def _seek_since(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition], since_ms: int
) -> dict[TopicPartition, int]:
    """Each partition at its first record since `since_ms`; their end offsets now."""
    ends = await consumer.end_offsets(parts)
    found = await consumer.offsets_for_times(dict.fromkeys(parts, since_ms))
    for tp in parts:
        at = found.get(tp)
        consumer.seek(tp, at.offset if at is not None else ends[tp])
    return {tp: int(end) for tp, end in ends.items()}
