"""The consume → handle → commit loop every service runs on (dispatcher, pools, results sink).

- Handlers run as tasks off the poll loop, at most `concurrency` at once; a full worker
  pauses its partitions and resumes them as work drains, so polling never stops.
- Offsets are committed only up to the contiguous finished prefix of each partition.
- A handler that raises a retryable BrokerError, or a Kafka or Redis error, is retried in
  place with backoff (the infrastructure is down, nothing else can progress); any other
  exception sends the raw record to the DLQ with the reason, so a poison message never
  blocks a partition.
- With `due` (the delay topics), a partition whose next record is not due yet is paused
  until it is, its position set back to that record: waiting records stay in Kafka, holding
  no slot and no memory, and the partition's records must come in the order they fall due.
- `stop` set: stop fetching, let in-flight work finish (bounded), commit, leave the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from redis.exceptions import RedisError

from aibroker.errors import BrokerError
from aibroker.kafka.producer import Producer, until_written
from aibroker.runtime.offsets import PartitionOffsets
from aibroker.telemetry import metrics, tracing
from aibroker.telemetry.liveness import HEARTBEATS
from aibroker.telemetry.logs import REQUEST_ID

log = logging.getLogger(__name__)

Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]
Due = Callable[[ConsumerRecord[bytes, bytes]], float]
"""When a record may be handled (Unix time)."""


@dataclass(frozen=True)
class WorkerConfig:
    name: str
    concurrency: int
    drain_timeout_s: float
    dlq_topic: str
    commit_interval_s: float = 0.2
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 10.0
    group: str = ""
    """The consumer group (a label of the lag metric)."""
    log_bodies: bool = False
    """Put the head of a record whose handler failed in the log (debugging only)."""
    due: Due | None = None
    """Hold each partition until its next record is due (records in due order)."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: KafkaWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._worker.hand_back(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("%s assigned %s", self._worker.config.name, sorted(str(tp) for tp in assigned))


class KafkaWorker:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: Producer,
        handler: Handler,
        config: WorkerConfig,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.handler = handler
        self.config = config
        self._offsets: dict[TopicPartition, PartitionOffsets] = {}
        self._tasks: dict[asyncio.Task[None], TopicPartition] = {}
        self._slot_freed = asyncio.Event()
        self._paused = False
        self._held: dict[TopicPartition, float] = {}
        """Partitions paused until their next record is due, with when."""
        # The metric children, looked up once: the per-record path only counts.
        self._in_flight_gauge = metrics.WORKER_IN_FLIGHT.labels(config.name)
        self._paused_gauge = metrics.WORKER_PAUSED.labels(config.name)
        self._lag_topics: set[str] = set()
        self._handle_seconds = metrics.HANDLE_SECONDS.labels(config.name)
        self._record_age = metrics.RECORD_AGE_SECONDS.labels(config.name)
        self._handled = {
            outcome: metrics.WORKER_MESSAGES.labels(config.name, outcome)
            for outcome in ("ok", "retried", "dead_lettered")
        }

    def listener(self) -> ConsumerRebalanceListener:
        return _Rebalance(self)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and dispatch until `stop` is set, then drain and commit."""
        loop = asyncio.get_running_loop()
        next_commit = loop.time() + self.config.commit_interval_s
        try:
            while not stop.is_set():
                HEARTBEATS.beat(self.config.name)
                free = self.config.concurrency - len(self._tasks)
                self._set_paused(free <= 0)
                batch = await self.consumer.getmany(
                    timeout_ms=self._poll_ms(), max_records=max(free, 1)
                )
                for tp, records in batch.items():
                    for record in records:
                        if self._hold_until_due(tp, record):
                            break
                        self._start(tp, record)
                self._release_due()
                if self._paused and not batch:
                    await self._wait_for_slot(0.1)
                if loop.time() >= next_commit:
                    await self.commit()
                    self._report_lag()
                    next_commit = loop.time() + self.config.commit_interval_s
        finally:
            HEARTBEATS.forget(self.config.name)
            await self._drain(set(self._tasks.values()), self.config.drain_timeout_s)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.commit()

    def _report_lag(self) -> None:
        """Per topic: records of this replica's partitions past its finished work, from the
        high watermarks of the last fetches (no extra request to Kafka)."""
        lag: dict[str, int] = dict.fromkeys(self._lag_topics, 0)
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            offsets = self._offsets.get(tp)
            done = offsets.done_up_to() if offsets else None
            if high is not None and done is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(high - done, 0)
        for topic, records in lag.items():
            metrics.CONSUMER_LAG.labels(topic, self.config.group).set(records)
        self._lag_topics = set(lag)

    def _set_paused(self, paused: bool) -> None:
        if paused == self._paused:
            return
        partitions = self.consumer.assignment()
        if paused:
            self.consumer.pause(*partitions)
        else:
            self.consumer.resume(*(partitions - self._held.keys()))
        self._paused = paused
        self._paused_gauge.set(int(paused))

    def _hold_until_due(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Pause `tp` at `record` if it is not due yet (what was fetched past it is dropped
        and fetched again once it is due)."""
        if self.config.due is None:
            return False
        due = self.config.due(record)
        if due <= time.time():
            return False
        self.consumer.seek(tp, record.offset)
        self.consumer.pause(tp)
        self._held[tp] = due
        return True

    def _poll_ms(self) -> int:
        """How long a poll may wait for records: 100 ms, less when a held partition falls
        due sooner (so a record is handled on time, not up to a poll late)."""
        if not self._held:
            return 100
        soonest = min(self._held.values()) - time.time()
        return max(0, min(100, int(soonest * 1000) + 1))

    def _release_due(self) -> None:
        now = time.time()
        for tp in [tp for tp, due in self._held.items() if due <= now]:
            del self._held[tp]
            if not self._paused and tp in self.consumer.assignment():
                self.consumer.resume(tp)

    async def _wait_for_slot(self, limit_s: float) -> None:
        self._slot_freed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._slot_freed.wait(), limit_s)

    def _start(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        offsets = self._offsets.setdefault(tp, PartitionOffsets())
        offsets.started(record.offset)
        task = asyncio.create_task(self._handle(record))
        self._tasks[task] = tp
        self._in_flight_gauge.inc()
        task.add_done_callback(lambda t: self._finished(t, offsets, record.offset))

    def _finished(self, task: asyncio.Task[None], offsets: PartitionOffsets, offset: int) -> None:
        self._tasks.pop(task, None)
        offsets.finished(offset)
        self._in_flight_gauge.dec()
        self._slot_freed.set()

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Handle one record in its own task, traced and logged under the record's key."""
        REQUEST_ID.set(record.key.decode("utf-8", "replace") if record.key else None)
        started = time.time()
        self._record_age.observe(max(started - record.timestamp / 1000, 0.0))
        with tracing.consuming(self.config.name, self.config.group, record):
            await self._handle_until_done(record)
        self._handle_seconds.observe(time.time() - started)

    async def _handle_until_done(self, record: ConsumerRecord[bytes, bytes]) -> None:
        delay = self.config.retry_backoff_s
        while True:
            try:
                await self.handler(record)
                self._handled["ok"].inc()
                return
            except BrokerError as exc:
                if not exc.retryable:
                    await self._dead_letter(record, exc)
                    return
                log.warning("%s: %s; retrying in %.1fs", self.config.name, exc.message, delay)
            except (KafkaError, RedisError) as exc:  # infrastructure down: nothing can progress
                log.warning("%s: %r; retrying in %.1fs", self.config.name, exc, delay)
            except Exception as exc:
                log.exception(
                    "%s: handler failed on %s:%d@%d%s",
                    self.config.name,
                    record.topic,
                    record.partition,
                    record.offset,
                    f": {record.value[:2048]!r}" if self.config.log_bodies and record.value else "",
                )
                await self._dead_letter(record, exc)
                return
            self._handled["retried"].inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.retry_backoff_max_s)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], exc: Exception) -> None:
        """The record, untouched, with where it came from and why it could not be handled."""
        self._handled["dead_lettered"].inc()
        metrics.DEAD_LETTERS.labels("poison").inc()
        headers = [
            *(record.headers or ()),
            ("aib-dlq-reason", f"{type(exc).__name__}: {exc}"[:1000].encode()),
            ("aib-dlq-source", f"{record.topic}:{record.partition}:{record.offset}".encode()),
            ("aib-dlq-worker", self.config.name.encode()),
            ("aib-dlq-kind", b"poison"),
        ]
        await until_written(
            lambda: self.producer.send_and_wait(
                self.config.dlq_topic, record.value, key=record.key, headers=headers
            ),
            f"{self.config.name}: dead letter",
            first_s=self.config.retry_backoff_s,
            max_s=self.config.retry_backoff_max_s,
        )

    async def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        """Commit the finished prefix of each (or each given) partition."""
        due: dict[TopicPartition, int] = {}
        for tp, offsets in self._offsets.items():
            if partitions is not None and tp not in partitions:
                continue
            position = offsets.position()
            if position is not None:
                due[tp] = position
        if not due:
            return
        try:
            await self.consumer.commit(due)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("%s: commit failed (%r); it will be retried", self.config.name, exc)
            return
        for tp, position in due.items():
            still = self._offsets.get(tp)
            if still is not None:  # a rebalance during the commit may have taken tp away
                still.committed(position)

    async def hand_back(self, revoked: set[TopicPartition]) -> None:
        """Before a rebalance takes partitions away: finish their work briefly, commit, forget."""
        await self._drain(revoked, min(self.config.drain_timeout_s, 10.0))
        await self.commit(revoked)
        for tp in revoked:
            self._offsets.pop(tp, None)
            self._held.pop(tp, None)

    async def _drain(self, partitions: set[TopicPartition], limit_s: float) -> None:
        tasks = [t for t, tp in self._tasks.items() if tp in partitions]
        if not tasks:
            return
        log.info("%s: waiting up to %.0fs for %d in-flight", self.config.name, limit_s, len(tasks))
        _done, pending = await asyncio.wait(tasks, timeout=limit_s)
        if pending:
            log.warning(
                "%s: %d still in flight; their records will be redelivered",
                self.config.name,
                len(pending),
            )
