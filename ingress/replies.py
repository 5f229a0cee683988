"""How ingress learns that a request ended.

- ReplyListener: this instance's reply topic, read from its end; sync callers wait here.
  `reply_listener` opens it (its consumer started, its loop running) and closes it.
- CompletionNotices: the Redis `aib:done` channel; long-polls wait here and then re-read
  the state, so a notice missed during a Redis blip costs at most one re-read interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from aibroker.kafka.clients import make_consumer
from aibroker.kafka.publisher import KIND_HEADER
from aibroker.settings import KafkaSettings
from aibroker.stores.redis import RedisClient, listen
from aibroker.stores.results import DONE_CHANNEL
from schemas.envelopes import Chunk, Result

log = logging.getLogger(__name__)


Reply = Chunk | Result


class ReplyListener:
    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self._consumer = consumer
        self._topic = topic
        self._waiters: dict[str, asyncio.Queue[Reply]] = {}

    @contextlib.contextmanager
    def expect(self, request_id: str) -> Iterator[asyncio.Queue[Reply]]:
        """Register before producing, so a fast reply cannot arrive unseen. The queue gets
        the request's streamed chunks, if any, then its Result."""
        queue: asyncio.Queue[Reply] = asyncio.Queue()
        self._waiters[request_id] = queue
        try:
            yield queue
        finally:
            self._waiters.pop(request_id, None)

    async def run(self) -> None:
        tp = TopicPartition(self._topic, 0)
        self._consumer.assign([tp])
        await self._consumer.seek_to_end(tp)
        while True:
            batch = await self._consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    self._deliver(record.value, dict(record.headers or ()))

    def _deliver(self, value: bytes | None, headers: dict[str, bytes]) -> None:
        try:
            reply: Reply = (
                Chunk if headers.get(KIND_HEADER) == b"chunk" else Result
            ).model_validate_json(value or b"")
        except ValidationError:
            log.warning("undecodable message on reply topic %s", self._topic)
            return
        queue = self._waiters.get(reply.id)
        if queue is not None:
            queue.put_nowait(reply)


@contextlib.asynccontextmanager
async def reply_listener(settings: KafkaSettings, topic: str) -> AsyncIterator[ReplyListener]:
    """The listener on `topic`, delivering until the block ends; its consumer is stopped however
    the block ends (a start-up step after it that fails too)."""
    consumer = make_consumer(settings, group_id=None)
    try:
        await consumer.start()  # inside: a start that fails half-way is closed too
        listener = ReplyListener(consumer, topic)
        loop = asyncio.create_task(listener.run())
        try:
            yield listener
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
    finally:
        await consumer.stop()


async def final_result(replies: asyncio.Queue[Reply]) -> Result:
    """The Result, past any chunks."""
    while True:
        reply = await replies.get()
        if isinstance(reply, Result):
            return reply


class CompletionNotices:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)

    @contextlib.asynccontextmanager
    async def watch(self, request_id: str) -> AsyncIterator[asyncio.Event]:
        event = asyncio.Event()
        self._events[request_id].add(event)
        try:
            yield event
        finally:
            waiting = self._events.get(request_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[request_id]

    async def run(self) -> None:
        await listen(self._redis, DONE_CHANNEL, self._notify)

    def _notify(self, request_id: str) -> None:
        for event in self._events.get(request_id, ()):
            event.set()
