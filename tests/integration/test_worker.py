"""The Kafka worker on a real broker: contiguous commits, poison to DLQ, drain on stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from aibroker.kafka.clients import make_consumer, make_producer
from aibroker.runtime.worker import Due, KafkaWorker, WorkerConfig
from aibroker.settings import Settings
from tests.waiting import eventually
from topics.apply import apply_topics
from topics.catalog import TopicSpec

pytestmark = [pytest.mark.integration, pytest.mark.smoke]


@pytest.fixture
async def topic(settings: Settings) -> str:
    name = f"{settings.kafka.topic_prefix}work"
    dlq = f"{settings.kafka.topic_prefix}dlq"
    await apply_topics(
        settings.kafka,
        [TopicSpec(name, 1, 60_000, "k", (), ()), TopicSpec(dlq, 1, 60_000, "k", (), ())],
    )
    return name


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    p = make_producer(settings.kafka)
    await p.start()
    yield p
    await p.stop()


async def committed(settings: Settings, topic: str, group: str) -> int | None:
    probe = make_consumer(settings.kafka, group_id=group)
    await probe.start()
    try:
        value: int | None = await probe.committed(TopicPartition(topic, 0))
        return value
    finally:
        await probe.stop()


def start_worker(
    settings: Settings,
    producer: AIOKafkaProducer,
    topic: str,
    group: str,
    handler: object,
    concurrency: int = 8,
    due: Due | None = None,
) -> tuple[KafkaWorker, AIOKafkaConsumer]:
    consumer = make_consumer(settings.kafka, group_id=group)
    config = WorkerConfig(
        "test",
        concurrency,
        5.0,
        f"{settings.kafka.topic_prefix}dlq",
        commit_interval_s=0.05,
        due=due,
    )
    worker = KafkaWorker(consumer, producer, handler, config)  # type: ignore[arg-type]
    consumer.subscribe([topic], listener=worker.listener())
    return worker, consumer


async def test_commits_stop_at_the_oldest_unfinished_record(
    settings: Settings, topic: str, producer: AIOKafkaProducer
) -> None:
    release = asyncio.Event()
    seen: list[int] = []

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        seen.append(record.offset)
        if record.value == b"slow":
            await release.wait()

    for value in [b"a", b"b", b"slow", b"c", b"d", b"e"]:
        await producer.send_and_wait(topic, value)
    worker, consumer = start_worker(settings, producer, topic, "g1", handler)
    await consumer.start()
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await eventually(lambda: _true(len(seen) == 6), what="all six records started")
        await eventually(
            lambda: _eq(committed(settings, topic, "g1"), 2), what="commit at the slow record"
        )
        await asyncio.sleep(0.3)
        assert await committed(settings, topic, "g1") == 2  # not past it while it runs
        release.set()
        await eventually(lambda: _eq(committed(settings, topic, "g1"), 6), what="commit at end")
    finally:
        stop.set()
        await running
        await consumer.stop()


async def test_poison_goes_to_the_dlq_and_the_partition_moves_on(
    settings: Settings, topic: str, producer: AIOKafkaProducer
) -> None:
    handled: list[bytes] = []

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value == b"poison":
            raise ValueError("cannot decode")
        handled.append(record.value)

    for value in [b"ok1", b"poison", b"ok2"]:
        await producer.send_and_wait(topic, value)
    worker, consumer = start_worker(settings, producer, topic, "g2", handler)
    await consumer.start()
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    dlq = make_consumer(settings.kafka, f"{settings.kafka.topic_prefix}dlq", group_id=None)
    await dlq.start()
    try:
        record = await asyncio.wait_for(dlq.getone(), 20)
        assert record.value == b"poison"
        headers = dict(record.headers)
        assert b"ValueError: cannot decode" in headers["aib-dlq-reason"]
        assert headers["aib-dlq-source"] == f"{topic}:0:1".encode()
        await eventually(lambda: _eq(committed(settings, topic, "g2"), 3), what="commit past")
        assert handled == [b"ok1", b"ok2"]
    finally:
        stop.set()
        await running
        await consumer.stop()
        await dlq.stop()


async def test_stop_finishes_in_flight_work_before_the_last_commit(
    settings: Settings, topic: str, producer: AIOKafkaProducer
) -> None:
    started = asyncio.Event()
    finished: list[int] = []

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.append(record.offset)

    await producer.send_and_wait(topic, b"x")
    worker, consumer = start_worker(settings, producer, topic, "g3", handler)
    await consumer.start()
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 20)
    stop.set()
    await running
    await consumer.stop()
    assert finished == [0]
    assert await committed(settings, topic, "g3") == 1


async def test_a_full_worker_pauses_instead_of_fetching_more(
    settings: Settings, topic: str, producer: AIOKafkaProducer
) -> None:
    release = asyncio.Event()
    running_now = 0
    peak = 0

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        nonlocal running_now, peak
        running_now += 1
        peak = max(peak, running_now)
        await release.wait()
        running_now -= 1

    for i in range(20):
        await producer.send_and_wait(topic, str(i).encode())
    worker, consumer = start_worker(settings, producer, topic, "g4", handler, concurrency=3)
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await eventually(lambda: _true(worker.in_flight == 3), what="three in flight")
        await asyncio.sleep(0.5)
        assert peak == 3
        assert worker.in_flight == 3
        release.set()
        await eventually(lambda: _eq(committed(settings, topic, "g4"), 20), what="all done")
    finally:
        stop.set()
        await task
        await consumer.stop()


async def _true(value: bool) -> bool:
    return value


async def _eq(value: object, expected: object) -> bool:
    return bool(await value == expected)  # type: ignore[misc]


async def test_a_partition_waits_paused_for_its_next_record_to_fall_due(
    settings: Settings, topic: str, producer: AIOKafkaProducer
) -> None:
    """Records not due yet are neither handled nor held: no slot is taken, nothing committed
    past them; each is handled once it is due, in order."""
    handled: list[tuple[bytes, float]] = []

    async def handler(record: ConsumerRecord[bytes, bytes]) -> None:
        handled.append((record.value, time.time()))

    def due(record: ConsumerRecord[bytes, bytes]) -> float:
        return float(dict(record.headers)["due"])

    worker, consumer = start_worker(settings, producer, topic, "g-due", handler, due=due)
    await consumer.start()
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        # Joining the group takes seconds on some brokers: the dues count from when it has.
        await eventually(lambda: _true(bool(consumer.assignment())), what="an assignment")
        start = time.time()
        dues = {b"now": start, b"soon": start + 1.5, b"later": start + 3.0}
        for value, at in dues.items():
            await producer.send_and_wait(topic, value, headers=[("due", str(at).encode())])
        await eventually(lambda: _true(len(handled) == 1), what="the record due now")
        await eventually(lambda: _eq(committed(settings, topic, "g-due"), 1), what="commit")
        assert worker.in_flight == 0  # the waiting ones hold no slot
        await eventually(lambda: _true(len(handled) == 3), what="the rest, when due", timeout_s=10)
    finally:
        stop.set()
        await running
        await consumer.stop()
    assert [value for value, _ in handled] == [b"now", b"soon", b"later"]
    for value, at in handled:
        assert at >= dues[value]
    await eventually(lambda: _eq(committed(settings, topic, "g-due"), 3), what="all committed")
