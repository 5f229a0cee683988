"""`KafkaProducer`: a direct producer's side of the topics. It writes valid, keyed, signed
request envelopes to the requests lanes, acknowledged by every in-sync replica, and, when
asked, reads `results` to hand each request's terminal Result back to whoever waits for it.

Results are read from the end of the topic as it stood when the producer started, so a
result is only awaited for a request sent by this producer (`run`, or `send` then `result`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Literal, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from aibroker.client.envelopes import new_request, record
from schemas.envelopes import Kind, Request, Result, Webhook
from topics.catalog import TopicNames


class KafkaProducer:
    """Writes requests for one tenant, signed with its producer secret.

    `connection` goes to aiokafka's producer and consumer as it is (`security_protocol`,
    `ssl_context`, `sasl_*`, …), `producer_options` to the producer alone
    (`enable_idempotence=False` for a broker that refuses it, `linger_ms`, …); `results=True`
    also reads `results` so that `result()` and `run()` can wait."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        tenant: str,
        secret: str | None,
        prefix: str = "aib.",
        results: bool = False,
        producer_options: dict[str, Any] | None = None,
        **connection: Any,
    ) -> None:
        self.tenant = tenant
        self._secret = secret
        self._names = TopicNames(prefix)
        self._connection = {"bootstrap_servers": bootstrap_servers, **connection}
        producing = {"enable_idempotence": True, **(producer_options or {}), "acks": "all"}
        self._producer = AIOKafkaProducer(**self._connection, **producing)
        self._results = results
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[Result]] = {}

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._producer.start()
        try:
            if self._results:
                await self._start_results()
        except BaseException:
            await self.stop()
            raise

    async def _start_results(self) -> None:
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self._connection)
        self._consumer = consumer
        await consumer.start()
        topic = self._names.results
        partitions = await self._producer.partitions_for(topic)  # waits for the metadata
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for tp in assigned:  # the end is fixed now, before any request is sent
            await consumer.position(tp)
        self._reader = asyncio.create_task(self._read_results(consumer))

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._consumer is not None:
            await self._consumer.stop()
        await self._producer.stop()

    async def send(
        self,
        kind: Kind,
        body: dict[str, Any],
        *,
        model: str | None = None,
        priority: Literal["interactive", "batch"] = "interactive",
        deadline: float | None = None,
        webhook: Webhook | None = None,
        request_id: str | None = None,
    ) -> Request:
        """Write one request to the lane of its priority; returns its envelope once Kafka has
        acknowledged it."""
        request = new_request(
            tenant=self.tenant,
            kind=kind,
            body=body,
            now=time.time(),
            model=model,
            priority=priority,
            deadline=deadline,
            webhook=webhook,
            request_id=request_id,
        )
        await self.send_request(request)
        return request

    async def send_request(self, request: Request) -> None:
        """Write an envelope built elsewhere (`new_request`)."""
        if self._results:
            self._waiting.setdefault(request.id, asyncio.get_running_loop().create_future())
        key, value, headers = record(request, self._secret)
        topic = self._names.lane(request.priority)
        await self._producer.send_and_wait(topic, value, key=key, headers=headers or None)

    async def result(self, request_id: str) -> Result:
        """The terminal Result of a request this producer sent (bound the wait with
        `asyncio.timeout`; a wait given up on can be taken up again)."""
        if not self._results:
            raise RuntimeError("KafkaProducer(results=True) reads results; this one does not")
        future = self._waiting.setdefault(request_id, asyncio.get_running_loop().create_future())
        result = await asyncio.shield(future)
        self._waiting.pop(request_id, None)
        return result

    async def run(self, kind: Kind, body: dict[str, Any]) -> Result:
        """Send one request and wait for its Result."""
        request = await self.send(kind, body)
        return await self.result(request.id)

    async def _read_results(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for rec in records:
                    future = self._waiting.get(rec.key.decode()) if rec.key else None
                    if future is None or future.done() or rec.value is None:
                        continue
                    future.set_result(Result.model_validate_json(rec.value))
