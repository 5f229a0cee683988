"""Turning an accepted HTTP call into a Request envelope on Kafka — acknowledged, or refused."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from opentelemetry.trace import SpanKind
from redis.exceptions import RedisError

from aibroker.errors import PayloadTooLarge, Unavailable
from aibroker.ids import new_id
from aibroker.kafka.publisher import Publisher
from aibroker.stores.keys import KeyInfo
from aibroker.stores.results import RequestStore
from aibroker.telemetry import metrics, tracing
from aibroker.telemetry.logs import REQUEST_ID
from schemas.envelopes import Kind, Mode, Request, Status, Webhook
from topics.catalog import TopicNames

log = logging.getLogger(__name__)


class Submitter:
    def __init__(
        self,
        publisher: Publisher,
        names: TopicNames,
        store: RequestStore,
        reply_topic: str,
        *,
        produce_timeout_s: float,
    ) -> None:
        self._publisher = publisher
        self._names = names
        self._store = store
        self._reply_topic = reply_topic
        self._produce_timeout_s = produce_timeout_s
        self._background: set[asyncio.Task[None]] = set()

    def envelope(
        self,
        key: KeyInfo,
        kind: Kind,
        model: str,
        body: dict[str, Any],
        mode: Mode,
        *,
        deadline: float | None = None,
        webhook: Webhook | None = None,
    ) -> Request:
        return Request(
            id=new_id("req"),
            tenant=key.tenant,
            key_id=key.key_id,
            kind=kind,
            model=model,
            body=body,
            mode=mode,
            reply_to=self._reply_topic if mode is Mode.SYNC else None,
            priority="batch" if mode is Mode.BATCH else "interactive",
            deadline=deadline,
            webhook=webhook,
            created_at=time.time(),
        )

    async def submit(self, request: Request) -> None:
        """Returns once Kafka acknowledged the write (acks=all); else raises Unavailable (503)."""
        topic = self._names.lane(request.priority)
        REQUEST_ID.set(request.id)
        started = time.perf_counter()
        try:
            with tracing.TRACER.start_as_current_span(
                f"publish {topic}",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": topic,
                    "aibroker.request_id": request.id,
                    "aibroker.tenant": request.tenant,
                    "aibroker.model": request.model,
                },
            ):
                give_up = time.time() + self._produce_timeout_s
                async with asyncio.timeout(self._produce_timeout_s):
                    await self._publisher.submit(request, give_up=give_up)
        except MessageSizeTooLargeError as exc:
            raise PayloadTooLarge(
                "The request is larger than the broker's message limit.", param="body"
            ) from exc
        except (KafkaError, TimeoutError) as exc:
            log.warning("refusing %s: kafka write failed (%r)", request.id, exc)
            raise Unavailable(
                "The broker cannot accept requests right now; retry shortly.", retry_after=2
            ) from exc
        metrics.ACCEPTED.labels(request.kind.value, request.mode.value).inc()
        metrics.STAGE_SECONDS.labels("accept").observe(time.perf_counter() - started)
        if request.mode is Mode.SYNC:
            task = asyncio.create_task(self._record_queued(request))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            await self._record_queued(request)

    async def _record_queued(self, request: Request) -> None:
        """Best effort: Redis is a cache; the request is already safe in Kafka."""
        try:
            async with asyncio.timeout(1.0):
                await self._store.advance(request.id, request.tenant, Status.QUEUED)
        except (RedisError, TimeoutError) as exc:
            log.warning("could not record %s as queued (%r)", request.id, exc)
