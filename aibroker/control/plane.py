"""The control plane as one process holds it: a keeper of the view, and stores whose writes go
through the config topic (`control_plane`); or, in a process that only reads it, stores that
trust a miss only while the view is ready (`read_view`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from redis.exceptions import RedisError

from aibroker.control.adopt import adopt
from aibroker.control.keeper import ViewKeeper
from aibroker.control.writer import LogWriter
from aibroker.kafka.clients import make_consumer, topic_partitions
from aibroker.kafka.producer import Producer
from aibroker.settings import KafkaSettings
from aibroker.stores.control_view import ControlView
from aibroker.stores.keys import RedisKeyStore
from aibroker.stores.redis import RedisClient
from aibroker.stores.tenants import RedisTenantStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControlPlane:
    view: ControlView
    """The view, its writes committed through the topic."""
    keeper: ViewKeeper
    tenants: RedisTenantStore
    keys: RedisKeyStore


def read_view(redis: RedisClient, topic: str) -> tuple[RedisTenantStore, RedisKeyStore]:
    """Stores for a process that reads the control plane and keeps no view: a miss while the
    view is rebuilt raises `ViewRebuilding` (a `RedisError`) instead of saying "no such"."""
    view = ControlView(redis, topic)
    return RedisTenantStore(redis, view), RedisKeyStore(redis, view)


@contextlib.asynccontextmanager
async def control_plane(
    kafka: KafkaSettings, topic: str, redis: RedisClient, producer: Producer
) -> AsyncIterator[ControlPlane]:
    """Keep the view of `topic` (read into Redis before this yields, unless Redis is down)
    and write through it, until the block ends. The topic must exist (`aibroker topics
    apply`); an empty one first adopts what an older release left in Redis."""
    consumer = make_consumer(kafka, group_id=None, fetch_max_wait_ms=kafka.fetch_wait_ms())
    await consumer.start()
    task: asyncio.Task[None] | None = None
    try:
        if not await topic_partitions(consumer, topic):
            raise RuntimeError(f"no config topic {topic}: run `aibroker topics apply`")
        keeper = ViewKeeper(consumer, topic, ControlView(redis, topic))
        writer = LogWriter(producer, topic, keeper)
        await _adopt_once(consumer, topic, redis, writer)
        await keeper.start()
        task = asyncio.create_task(keeper.run())
        view = ControlView(redis, topic, writer.commit)
        yield ControlPlane(view, keeper, RedisTenantStore(redis, view), RedisKeyStore(redis, view))
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), 5)


async def _adopt_once(
    consumer: AIOKafkaConsumer, topic: str, redis: RedisClient, writer: LogWriter
) -> None:
    """Adopt an older release's control plane, while the topic has never been written."""
    tp = TopicPartition(topic, 0)
    if (await consumer.end_offsets([tp]))[tp] > 0:
        return
    try:
        await adopt(redis, writer.append)
    except RedisError as exc:
        log.warning("an older release's tenants and keys not looked for (%r)", exc)
