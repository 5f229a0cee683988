"""Writing envelopes to their topics; every terminal result goes to `results` and, for sync
requests, to the waiting ingress's reply topic, both acknowledged before the caller moves on."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel

from aibroker.errors import BrokerError
from aibroker.kafka.clients import encode
from aibroker.kafka.producer import Producer
from aibroker.telemetry import metrics
from schemas.envelopes import Chunk, ErrorInfo, Outcome, Request, Result, Status, UsageEvent
from topics.catalog import TopicNames, delay_topic

DUE_HEADER = "aib-due"
"""On delay topics: the Unix time the record is due."""
DEST_HEADER = "aib-dest"
"""On delay topics: the topic the record goes to when due."""
KIND_HEADER = "aib-kind"
"""On reply topics: `chunk` for a streamed Chunk; absent for a Result."""
CHUNK_HEADERS = [(KIND_HEADER, b"chunk")]


class Publisher:
    def __init__(self, producer: Producer, names: TopicNames) -> None:
        self.producer = producer
        self.names = names

    async def request(
        self, topic: str, request: Request, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        await self.producer.send_and_wait(
            topic, encode(request), key=request.id.encode(), headers=headers
        )

    async def later(self, dest: str, envelope: BaseModel, key: str, delay_s: float) -> None:
        """Send `envelope` to `dest` after `delay_s`, through the delay topic that fits (the
        dispatcher's delay loop sends it on when due)."""
        headers = [
            (DUE_HEADER, f"{time.time() + delay_s:.3f}".encode()),
            (DEST_HEADER, dest.encode()),
        ]
        topic = self.names.retry(delay_topic(delay_s))
        await self.producer.send_and_wait(
            topic, encode(envelope), key=key.encode(), headers=headers
        )

    async def chunk(self, request: Request, seq: int, data: dict[str, Any]) -> asyncio.Future[Any]:
        """Send one streamed chunk to the caller's reply topic; returns the ack to await later
        (chunks are not waited on one by one: they share a partition, so they stay in order)."""
        if request.reply_to is None:
            raise ValueError("only a sync request, which has a reply topic, is streamed")
        chunk = Chunk(id=request.id, seq=seq, data=data)
        ack: asyncio.Future[Any] = await self.producer.send(
            request.reply_to, encode(chunk), key=request.id.encode(), headers=CHUNK_HEADERS
        )
        return ack

    async def usage(self, event: UsageEvent) -> None:
        await self.producer.send_and_wait(
            self.names.usage, encode(event), key=event.tenant.encode()
        )

    async def outcome(self, outcome: Outcome) -> None:
        await self.producer.send_and_wait(
            self.names.outcomes, encode(outcome), key=outcome.request.id.encode()
        )

    async def result(self, result: Result, reply_to: str | None) -> None:
        data, key = encode(result), result.id.encode()
        sends = [await self.producer.send(self.names.results, data, key=key)]
        if reply_to:
            sends.append(await self.producer.send(reply_to, data, key=key))
        await asyncio.gather(*sends)

    async def dead_letter(self, request: Request, reason: str, *, kind: str) -> None:
        """For operators: the request and why it could not be served (replayable).
        `kind` (`exhausted`, `internal`) labels the metric; the reason goes in a header."""
        metrics.DEAD_LETTERS.labels(kind).inc()
        await self.producer.send_and_wait(
            self.names.dlq,
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


def terminal(
    request: Request,
    status: Status,
    *,
    error: ErrorInfo | None = None,
    response: dict[str, object] | None = None,
) -> Result:
    now = time.time()
    return Result(
        id=request.id,
        tenant=request.tenant,
        status=status,
        error=error,
        response=response,
        served_by=request.target,
        attempts=request.attempt,
        total_ms=round((now - request.created_at) * 1000, 3),
        finished_at=now,
        webhook=request.webhook,
        batch_id=request.batch_id,
        custom_id=request.custom_id,
    )


def expired_error() -> ErrorInfo:
    return ErrorInfo(
        message="The request's deadline passed before it could run.",
        type="timeout_error",
        code="deadline_exceeded",
        http_status=408,
    )


def cancelled_error() -> ErrorInfo:
    return ErrorInfo(
        message="The request was cancelled by the client.",
        type="invalid_request_error",
        code="request_cancelled",
        http_status=409,
    )
