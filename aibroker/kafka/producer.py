"""How aibroker writes to Kafka: one producer per process, that puts the current trace context
on every record it sends (W3C `traceparent` in the headers) and outlives a fatal error of its
own.

An `OutOfOrderSequenceNumber` means the broker no longer holds the idempotent producer's
sequence (as after an unclean broker restart). aiokafka fails the batch that met it; when its
sender routine meets it, the routine stops for good and every later send raises it. Every
retry loop above would then spin on a dead producer until the process was restarted. The Java
client resets its producer id there (KIP-360); here the whole aiokafka producer is replaced by
a new one (a new producer id, sequences from zero). The send that met the error still raises
it, so the caller's own retry goes through the new producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, OutOfOrderSequenceNumber
from aiokafka.structs import RecordMetadata
from opentelemetry.trace import Span

from aibroker.telemetry.tracing import Headers, inject, sent, start_send

log = logging.getLogger(__name__)

FATAL = (OutOfOrderSequenceNumber,)
"""Errors after which aiokafka's producer never sends again."""


class Producer:
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._inner = AIOKafkaProducer(**options)
        self._renewing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.renewals = 0
        """How many times a dead producer was replaced (tests and logs)."""

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._inner.stop()

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue a record, with the trace context in its headers (any it carried replaced);
        the future resolves once Kafka acknowledged it. A `send <topic>` span covers the
        send until that acknowledgement."""
        inner = self._inner
        span = start_send(topic, key)
        try:
            future: asyncio.Future[RecordMetadata] = await inner.send(
                topic, value, key, partition, timestamp_ms, inject(headers, span)
            )
        except BaseException as exc:
            sent(span, None, None, exc)
            if isinstance(exc, FATAL):
                await self._renew(inner)
            raise
        future.add_done_callback(lambda done: self._check(done, inner))
        if span.is_recording():
            future.add_done_callback(lambda done: _acknowledged(span, done))
        return future

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, **options: Any
    ) -> RecordMetadata:
        """Send and wait for the acknowledgement; after a fatal error the producer is already
        replaced when this raises, so the caller's next try goes through the new one."""
        inner = self._inner  # the one `send` is about to use (no await in between)
        future = await self.send(topic, value, key, **options)
        try:
            return await future
        except FATAL:
            await self._renew(inner)
            raise

    async def reachable(self) -> None:
        """Raises unless the cluster answers a metadata request (readiness checks)."""
        await self._inner.client.fetch_all_metadata()

    def _check(self, done: asyncio.Future[RecordMetadata], inner: AIOKafkaProducer) -> None:
        if done.cancelled() or not isinstance(done.exception(), FATAL):
            return
        task = asyncio.create_task(self._renew(inner))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _renew(self, failed: AIOKafkaProducer) -> None:
        """Replace `failed` by a started new producer, once, however many sends saw it fail."""
        async with self._renewing:
            if self._inner is not failed:
                return
            log.warning("the Kafka producer failed for good; starting a new one (new producer id)")
            fresh = AIOKafkaProducer(**self._options)
            await fresh.start()
            self._inner = fresh
            self.renewals += 1
        with contextlib.suppress(Exception):  # its batches have already failed
            await asyncio.wait_for(failed.stop(), 5)


def _acknowledged(span: Span, done: asyncio.Future[RecordMetadata]) -> None:
    """End a record's send span with its partition and offset, or its failure."""
    if done.cancelled():
        sent(span, None, None, asyncio.CancelledError())
    elif (error := done.exception()) is not None:
        sent(span, None, None, error)
    else:
        metadata = done.result()
        sent(span, metadata.partition, metadata.offset, None)


async def until_written(
    send: Callable[[], Awaitable[object]], what: str, *, first_s: float = 0.5, max_s: float = 10.0
) -> None:
    """Write again and again, with doubling waits, while Kafka cannot take it (a broker
    restarting, a leader election): for output that must not be lost or redone. A record too
    large for the broker is no outage: raised."""
    delay = first_s
    while True:
        try:
            await send()
            return
        except MessageSizeTooLargeError:
            raise
        except KafkaError as exc:
            log.warning("%s not written (%r); trying again in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_s)
