"""Writing envelopes to their topics; every terminal result goes to `results` and, for sync
requests, to the waiting ingress's reply topic, both acknowledged before the caller moves on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from aibroker.errors import BrokerError
from aibroker.kafka.acceptance import give_up_header
from aibroker.kafka.clients import encode
from aibroker.kafka.producer import Producer
from aibroker.rules.webhooks import batch_messages
from aibroker.signing import signature_header
from aibroker.telemetry import metrics
from schemas.audit import AuditEntry
from schemas.batches import Batch, BatchStarted
from schemas.envelopes import (
    Chunk,
    Delivery,
    ErrorInfo,
    Outcome,
    Request,
    Result,
    Status,
    UsageEvent,
)
from schemas.terminal import terminal
from schemas.webhook_events import WebhookEndpoint
from topics.catalog import TopicNames, delay_topic

DUE_HEADER = "aib-due"
"""On delay topics: the Unix time the record is due."""
DEST_HEADER = "aib-dest"
"""On delay topics: the topic the record goes to when due."""
KIND_HEADER = "aib-kind"
"""On reply topics: `chunk` for a streamed Chunk; absent for a Result."""
CHUNK_HEADERS = [(KIND_HEADER, b"chunk")]


class Publisher:
    """Every write of an envelope goes through one of these named operations; the producer and
    the topic names stay inside (callers say what they write, not where or how)."""

    def __init__(
        self, producer: Producer, names: TopicNames, *, envelope_secret: str | None = None
    ) -> None:
        self._producer = producer
        self._names = names
        self._secret = envelope_secret
        """Signs the requests this service writes to the requests topics (see `signing`)."""

    def _signed(self, value: bytes) -> list[tuple[str, bytes]]:
        return [signature_header(value, self._secret)] if self._secret else []

    async def submit(self, request: Request, *, give_up: float | None = None) -> None:
        """A new request onto the requests lane of its priority. `give_up`: the time its
        writer stops waiting and answers 503 (see `acceptance`)."""
        value = encode(request)
        headers = self._signed(value)
        if give_up is not None:
            headers.append(give_up_header(give_up))
        await self._producer.send_and_wait(
            self._names.lane(request.priority),
            value,
            key=request.id.encode(),
            headers=headers or None,
        )

    async def submit_all(self, requests: list[Request]) -> None:
        """Many new requests, written concurrently and all acknowledged before it returns."""
        sends = []
        for r in requests:
            value = encode(r)
            topic, key = self._names.lane(r.priority), r.id.encode()
            headers = self._signed(value) or None
            sends.append(await self._producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*sends)

    async def forward(self, topic: str, request: Request) -> None:
        """A request on to the next topic of its way (a target's dispatch topic)."""
        await self._producer.send_and_wait(topic, encode(request), key=request.id.encode())

    async def forward_record(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """A record sent on unchanged (a delayed record now due, a replayed dead letter)."""
        await self._producer.send_and_wait(topic, value, key=key, headers=headers)

    async def delayed(self, dest: str, envelope: BaseModel, key: str, delay_s: float) -> None:
        """Send `envelope` to `dest` after `delay_s`, through the delay topic that fits (the
        dispatcher's delay loop sends it on when due)."""
        value = encode(envelope)
        headers = [
            (DUE_HEADER, f"{time.time() + delay_s:.3f}".encode()),
            (DEST_HEADER, dest.encode()),
            *(self._signed(value) if isinstance(envelope, Request) else []),
        ]
        topic = self._names.retry(delay_topic(delay_s))
        await self._producer.send_and_wait(topic, value, key=key.encode(), headers=headers)

    async def deliver(self, delivery: Delivery, *, delay_s: float = 0.0) -> None:
        """A webhook message to the deliverer, now or (a retry) after `delay_s`."""
        if delay_s > 0:
            await self.delayed(self._names.webhooks, delivery, delivery.request_id, delay_s)
            return
        await self._producer.send_and_wait(
            self._names.webhooks, encode(delivery), key=delivery.request_id.encode()
        )

    async def batch_started(self, batch_id: str) -> None:
        """Set the batch runner going on a batch (again, after a crash, it resumes)."""
        await self._producer.send_and_wait(
            self._names.batches, encode(BatchStarted(batch_id=batch_id)), key=batch_id.encode()
        )

    async def batch_ended(self, batch: Batch, endpoints: Sequence[WebhookEndpoint]) -> None:
        """Announce an ended batch: one webhook message per endpoint that wants its event."""
        for delivery in batch_messages(batch, endpoints, time.time()):
            await self.deliver(delivery)

    async def chunk(self, request: Request, seq: int, data: dict[str, Any]) -> asyncio.Future[Any]:
        """Send one streamed chunk to the caller's reply topic; returns the ack to await later
        (chunks are not waited on one by one: they share a partition, so they stay in order)."""
        if request.reply_to is None:
            raise ValueError("only a sync request, which has a reply topic, is streamed")
        chunk = Chunk(
            id=request.id,
            seq=seq,
            data=data,
            cache=request.cache_mark,
            cache_score=request.cache_score,
        )
        ack: asyncio.Future[Any] = await self._producer.send(
            request.reply_to, encode(chunk), key=request.id.encode(), headers=CHUNK_HEADERS
        )
        return ack

    async def usage(self, event: UsageEvent) -> None:
        await self._producer.send_and_wait(
            self._names.usage, encode(event), key=event.tenant.encode()
        )

    async def audit(self, entry: AuditEntry) -> None:
        await self._producer.send_and_wait(
            self._names.audit, encode(entry), key=(entry.tenant or "").encode()
        )

    async def outcome(self, outcome: Outcome) -> None:
        await self._producer.send_and_wait(
            self._names.outcomes, encode(outcome), key=outcome.request.id.encode()
        )

    async def result(self, result: Result, reply_to: str | None) -> None:
        data, key = encode(result), result.id.encode()
        sends = [await self._producer.send(self._names.results, data, key=key)]
        if reply_to:
            sends.append(await self._producer.send(reply_to, data, key=key))
        await asyncio.gather(*sends)

    async def dead_letter(self, request: Request, reason: str, *, kind: str) -> None:
        """For operators: the request and why it could not be served (replayable).
        `kind` (`exhausted`, `internal`) labels the metric; the reason goes in a header."""
        metrics.DEAD_LETTERS.labels(kind).inc()
        await self._producer.send_and_wait(
            self._names.dlq,
            encode(request),
            key=request.id.encode(),
            headers=[("aib-dlq-reason", reason[:1000].encode()), ("aib-dlq-kind", kind.encode())],
        )

    async def internal_failure(self, request: Request, exc: Exception) -> None:
        """A bug met this request: it still ends (failed, 500), and operators get it in the
        DLQ with the reason, to replay once the bug is fixed."""
        await self.dead_letter(request, f"{type(exc).__name__}: {exc}", kind="internal")
        await self.fail(request, BrokerError("The broker failed internally on this request."))

    async def fail(
        self, request: Request, error: BrokerError | ErrorInfo, status: Status = Status.FAILED
    ) -> None:
        """End a request with an error result."""
        info = error.info() if isinstance(error, BrokerError) else error
        await self.result(terminal(request, status, error=info), request.reply_to)

    async def reachable(self) -> None:
        """Raises unless the brokers answer (the readiness check)."""
        await self._producer.reachable()
