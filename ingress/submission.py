"""A request's way through ingress, in one object the routes call: the envelope, the Kafka
write (acknowledged, or refused with 503), the Idempotency-Key, a response-cache hit answered
without the write (`cache_hits`), and waiting for the end (the sync caller's reply waiter,
long-polls on completion notices, cancellation)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Coroutine
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from opentelemetry.trace import SpanKind
from redis.exceptions import RedisError
from starlette.responses import Response

from aibroker.errors import KeyReused, NotFound, PayloadTooLarge, Unavailable
from aibroker.identity import Client
from aibroker.ids import new_id
from aibroker.kafka.publisher import Publisher
from aibroker.stores.guard import DEADLINE_S, deadline
from aibroker.stores.idempotency import IdempotencyStore, fingerprint
from aibroker.stores.responses import ResponseStore
from aibroker.stores.results import RequestState, RequestStore
from aibroker.telemetry import metrics, tracing
from aibroker.telemetry.logs import REQUEST_ID
from ingress import responses_events, responses_resume
from ingress.cache_hits import Hit, IngressCache, hit_response
from ingress.errors import error_response
from ingress.replies import CompletionNotices, ReplyListener, final_result
from ingress.streaming import relay, result_as_stream
from ingress.views import accepted, result_response
from schemas.envelopes import Kind, Mode, Request, Result, Status, Webhook
from schemas.terminal import cancelled_error
from topics.catalog import TopicNames

log = logging.getLogger(__name__)

STATE_REREAD_S = 5.0
"""While waiting on a completion notice, re-read the state this often (a missed notice
costs at most this long)."""
QUEUED_WAIT_S = 0.1
"""How long an async accept waits for its `queued` mark, so that a GET right after the 202
finds the request; a slower write lands after the 202 (measured: 300 accepts at once)."""
CANCEL_WAIT_S = 5.0
"""How long a cancel waits for the request to end before it answers its state."""


class WriteUnconfirmed(Unavailable):
    """503: Kafka did not acknowledge the write in time, but it may still land (the idempotent
    producer never drops a batch). The answer names the request in `x-request-id`."""

    def __init__(self, request_id: str, *, withdrawn: bool) -> None:
        if withdrawn:
            message = (
                "The broker cannot accept requests right now; retry shortly. Should its write "
                f"land later, request {request_id} is cancelled and does not run."
            )
        else:
            message = (
                "The broker cannot accept requests right now, and request "
                f"{request_id} may still be written and run: GET /v1/requests/{request_id} "
                f"tells, and a retry with Idempotency-Key: {request_id} answers as it if it ran."
            )
        super().__init__(message, retry_after=2)
        self.request_id = request_id


class Submission:
    def __init__(
        self,
        publisher: Publisher,
        store: RequestStore,
        idempotency: IdempotencyStore,
        replies: ReplyListener,
        notices: CompletionNotices,
        names: TopicNames,
        *,
        reply_topic: str,
        produce_timeout_s: float,
        redis_deadline_s: float,
        cache: IngressCache | None = None,
        responses: ResponseStore | None = None,
    ) -> None:
        self._publisher = publisher
        self._store = store
        self._idempotency = idempotency
        self._replies = replies
        self._notices = notices
        self._names = names
        self._reply_topic = reply_topic
        self._produce_timeout_s = produce_timeout_s
        self._redis_deadline_s = redis_deadline_s
        """Redis calls on the accept path: past it, the submission takes its degraded path."""
        self._cache = cache
        """The response cache, when it is on: hits are answered before any write."""
        self._background: set[asyncio.Task[None]] = set()
        self.responses = responses
        """Stored responses (`previous_response_id`) and background responses' events."""

    def envelope(
        self,
        key: Client,
        kind: Kind,
        model: str,
        body: dict[str, Any],
        mode: Mode,
        *,
        deadline: float | None = None,
        webhook: Webhook | None = None,
    ) -> Request:
        return Request(
            # A Response object's id is its request's: `resp_...`, polled as OpenAI's are.
            id=new_id("resp" if kind is Kind.RESPONSES else "req"),
            tenant=key.tenant,
            key_id=key.key_id,
            user=key.user,
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

    async def submit(
        self, request: Request, wait_s: float | None, idempotency_key: str | None = None
    ) -> Response:
        """Write the request; with `wait_s`, wait that long for its result (sync), else 202.
        An Idempotency-Key that names an earlier request answers as that one instead. A write
        Kafka did not confirm is answered 503, naming the request in `x-request-id`."""
        with deadline(self._redis_deadline_s):
            try:
                return await self._submit_once(request, wait_s, idempotency_key)
            except WriteUnconfirmed as refused:
                answer = error_response(refused)
                answer.headers["x-request-id"] = refused.request_id  # the id it would have had
                return answer

    async def _submit_once(
        self, request: Request, wait_s: float | None, idempotency_key: str | None
    ) -> Response:
        """With Redis down or hung, a request with an Idempotency-Key is refused (503): it
        could not be told from a repeat, and running it twice is what the key forbids."""
        if not idempotency_key:
            return await self._submit(request, wait_s)
        streamed = bool(request.body.get("stream"))
        if await self._names_a_request(idempotency_key, request.tenant):
            return await self._replay(idempotency_key, request.tenant, wait_s, streamed)
        body_print = fingerprint(request.kind.endpoint, request.body)
        request = request.model_copy(update={"idempotency_key": idempotency_key})
        found = await self._idempotency.reserve(
            request.tenant, idempotency_key, request.id, body_print
        )
        if not found.same_body:
            raise KeyReused(
                "This Idempotency-Key was used with a different request body.",
                param="Idempotency-Key",
            )
        if not found.fresh:
            return await self._replay(found.request_id, request.tenant, wait_s, streamed)
        try:
            return await self._submit(request, wait_s)
        except Unavailable:  # refused: the key may be used again
            with contextlib.suppress(RedisError):
                await self._idempotency.forget(
                    request.tenant, idempotency_key, request.id, body_print
                )
            raise

    async def _submit(self, request: Request, wait_s: float | None) -> Response:
        if self._cache is not None and (hit := await self._cache.find(request)) is not None:
            return await self._answer_hit(self._cache, hit, wait_s)
        if wait_s is None:
            if request.kind is Kind.RESPONSES and _background_stream(request.body):
                return await self._submit_background_stream(request)
            await self.write(request)
            return accepted(request.id)
        if request.body.get("stream"):
            return await self._submit_stream(request, wait_s)
        with self._replies.expect(request.id) as replies:
            await self.write(request)
            try:
                result = await asyncio.wait_for(final_result(replies), wait_s)
            except TimeoutError:
                return accepted(request.id)
        return result_response(result)

    async def _submit_stream(self, request: Request, wait_s: float) -> Response:
        """Chunks from the reply topic relayed as they come. The response starts with the
        first chunk, so a request that fails before any has its error status, not a broken
        stream."""
        registration = contextlib.ExitStack()  # lives as long as the stream, or until we return
        replies = registration.enter_context(self._replies.expect(request.id))
        with registration:
            await self.write(request)
            try:
                first = await asyncio.wait_for(replies.get(), wait_s)
            except TimeoutError:
                return accepted(request.id)
            if request.kind is Kind.RESPONSES:  # the Responses API's own typed events
                if isinstance(first, Result):
                    return responses_events.result_as_stream(first, request.body)
                kept = registration.pop_all()
                return responses_events.relay(
                    request.body, first, replies, kept, wait_s, self._settler(request)
                )
            if isinstance(first, Result):
                return result_as_stream(first)
            return relay(first, replies, registration.pop_all(), wait_s)

    async def _submit_background_stream(self, request: Request) -> Response:
        """`background: true, stream: true`: the pool streams to this ingress's reply topic,
        a task of its own keeps the events (`responses_resume`), and the client reads them
        from there, as a resume from the start would."""
        if self.responses is None:
            raise Unavailable("Background streams are not served here.")
        store = self.responses
        request = request.model_copy(update={"reply_to": self._reply_topic})
        registration = contextlib.ExitStack()
        replies = registration.enter_context(self._replies.expect(request.id))
        with registration:
            await responses_resume.start(store, request)
            await self.write(request)
            settle = self._settler(request)
            kept = registration.pop_all()
            self._spawn(responses_resume.write(store, request, replies, kept, settle))

        async def read_state() -> RequestState:
            return await self.state(request.id, request.tenant, known=True)

        return responses_resume.replay(store, read_state, request.body, request.id, -1)

    def _settler(self, request: Request) -> responses_events.Settle:
        """What a response's stream awaits before its end: its result stored."""
        return lambda: self.wait_for_end(request.id, request.tenant, responses_events.SETTLE_S)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        context = contextvars.copy_context()
        context.run(DEADLINE_S.set, None)  # each call its ordinary deadline, not the accept's
        task = asyncio.create_task(work, context=context)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _answer_hit(self, cache: IngressCache, hit: Hit, wait_s: float | None) -> Response:
        """A hit found before the request was written: its end recorded on `results` and the
        caller answered here. A sync caller has its answer (the results sink records the end
        from `results`). An async caller's 202 says `succeeded`, so it waits (at most
        `QUEUED_WAIT_S`) for the sink to store the result, and a GET right after finds it;
        past that wait the request is marked queued, as any accepted one."""
        request = hit.request
        REQUEST_ID.set(request.id)
        tracing.event("cache hit", tenant=request.tenant, model=request.model)
        if wait_s is not None:
            result = await self._record_hit(cache, hit)
            if request.kind is Kind.RESPONSES and request.body.get("stream"):
                return responses_events.result_as_stream(result, request.body)
            return hit_response(result, streamed=bool(request.body.get("stream")))
        async with self._notices.watch(request.id) as stored:  # before the write: not missed
            await self._record_hit(cache, hit)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stored.wait(), QUEUED_WAIT_S)
        if not stored.is_set():
            await self.mark_queued(request)
        return accepted(request.id, Status.SUCCEEDED)

    async def _record_hit(self, cache: IngressCache, hit: Hit) -> Result:
        """The hit's end, acknowledged by Kafka; else 503, as for a write that was not."""
        await self._keep_response(hit.request)
        try:
            async with asyncio.timeout(self._produce_timeout_s):
                return await cache.record(hit)
        except (KafkaError, TimeoutError) as exc:
            log.warning("refusing %s: its cache hit was not recorded (%r)", hit.request.id, exc)
            raise WriteUnconfirmed(hit.request.id, withdrawn=False) from exc

    async def write(self, request: Request) -> None:
        """Returns once Kafka acknowledged the write (acks=all); else raises Unavailable (503)."""
        topic = self._names.lane(request.priority)
        REQUEST_ID.set(request.id)
        started = time.perf_counter()
        await self._keep_response(request)
        try:
            # Around the write and its retries; each try is a producer span `send <topic>`.
            with tracing.TRACER.start_as_current_span(
                f"write {topic}",
                kind=SpanKind.INTERNAL,
                attributes={
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
            raise WriteUnconfirmed(request.id, withdrawn=await self._withdraw(request)) from exc
        metrics.ACCEPTED.labels(request.kind.value, request.mode.value).inc()
        metrics.STAGE_SECONDS.labels("accept").observe(time.perf_counter() - started)
        await self.mark_queued(request)

    async def _keep_response(self, request: Request) -> None:
        """A stored response's request, kept before its write so that its end finds it (best
        effort: with Redis down the response is served, and not stored)."""
        if self.responses is None or request.kind is not Kind.RESPONSES:
            return
        if request.body.get("store") is False:
            return
        try:
            await self.responses.keep(request.id, request.tenant, request.body)
        except (RedisError, TimeoutError) as exc:
            log.warning("response %s not stored (%r)", request.id, exc)

    async def _withdraw(self, request: Request) -> bool:
        """Flag a refused request cancelled before the 503 goes out: should its write land
        later, the dispatcher does not admit it and no pool runs it (the client was told it was
        refused, and may retry without an Idempotency-Key). False when Redis cannot take the
        flag: then only a write appended well after the refusal is dropped (`acceptance`)."""
        try:
            await self._store.request_cancel(request.id)
        except (RedisError, TimeoutError) as exc:
            log.warning("refused %s not flagged (%r): a late write may run", request.id, exc)
            return False
        return True

    async def _names_a_request(self, idempotency_key: str, tenant: str) -> bool:
        """Whether an Idempotency-Key is the id of one of the tenant's requests, one that was
        not cancelled: the id a 503 named, whose write landed all the same. A retry with it
        answers as that request instead of running the work again."""
        if not idempotency_key.startswith(("req_", "resp_")):
            return False
        state = await self._store.get(idempotency_key)
        return state is not None and state.tenant == tenant and state.status is not Status.CANCELLED

    async def mark_queued(self, request: Request) -> None:
        """Record the request as queued, best effort: it is already safe in Kafka. An async
        accept waits for the write at most `QUEUED_WAIT_S` (a sync one not at all); the write
        goes on under the ordinary deadline, so a burst queueing for connections still
        records every request, and a hung Redis delays no 202 by more."""
        context = contextvars.copy_context()
        context.run(DEADLINE_S.set, None)  # the client's ordinary deadline, not the accept's
        write = asyncio.create_task(self._record_queued(request), context=context)
        self._background.add(write)
        write.add_done_callback(self._background.discard)
        if request.mode is not Mode.SYNC:
            await asyncio.wait({write}, timeout=min(QUEUED_WAIT_S, self._redis_deadline_s))

    async def _record_queued(self, request: Request) -> None:
        try:
            await self._store.advance(request.id, request.tenant, Status.QUEUED)
        except RedisError as exc:
            log.warning("could not record %s as queued (%r)", request.id, exc)

    async def _replay(
        self, request_id: str, tenant: str, wait_s: float | None, streamed: bool
    ) -> Response:
        """The answer of the earlier request an Idempotency-Key names."""
        state = await self.wait_for_end(request_id, tenant, wait_s or 0, known=True)
        if state.status.terminal and state.result is not None and wait_s is not None:
            if not streamed:
                return result_response(state.result)
            if request_id.startswith("resp_"):
                return responses_events.result_as_stream(state.result)
            return result_as_stream(state.result)
        return accepted(request_id, state.status)

    async def state(self, request_id: str, tenant: str, *, known: bool = False) -> RequestState:
        """The caller's request, or 404 (also for another tenant's id). A `known` request (one
        an Idempotency-Key points to) may not be recorded yet: it reads as queued."""
        state = await self._store.get(request_id)  # a reader waits: the client's deadline
        if state is None and known:
            return RequestState(request_id, tenant, Status.QUEUED, None)
        if state is None or state.tenant != tenant:
            raise NotFound(f"No request with id '{request_id}'.", param="id")
        return state

    async def wait_for_end(
        self, request_id: str, tenant: str, wait_s: float, *, known: bool = False
    ) -> RequestState:
        """The state as soon as the request ends, or as it is after `wait_s`."""
        state = await self.state(request_id, tenant, known=known)
        if state.status.terminal or wait_s <= 0:
            return state
        deadline = time.monotonic() + wait_s
        async with self._notices.watch(request_id) as done:
            # Read again after subscribing: an end between the two reads is not missed.
            state = await self.state(request_id, tenant, known=known)
            while not state.status.terminal and (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), min(left, STATE_REREAD_S))
                done.clear()
                state = await self.state(request_id, tenant, known=known)
        return state

    async def cancel(self, request_id: str, tenant: str) -> RequestState:
        """Cancel a request that has not ended; its state once it has (or after a while)."""
        state = await self.state(request_id, tenant)
        if state.status.terminal:
            return state
        if await self._store.request_cancel(request_id):
            cancelled = Result(
                id=request_id,
                tenant=tenant,
                status=Status.CANCELLED,
                error=cancelled_error(),
                finished_at=time.time(),
            )
            with contextlib.suppress(KafkaError):  # the flag alone stops queued work
                await self._publisher.result(cancelled, None)
        return await self.wait_for_end(request_id, tenant, CANCEL_WAIT_S)

    async def forget(self, request_id: str, tenant: str) -> None:
        """Delete a request's state and result, cancelling it first if it has not ended (a
        later read is a 404). Its envelope and result stay in Kafka for their retention."""
        state = await self.state(request_id, tenant)
        if not state.status.terminal:
            await self.cancel(request_id, tenant)
        await self._store.delete(request_id)
        if self.responses is not None and request_id.startswith("resp_"):
            await self.responses.forget(request_id)


def _background_stream(body: dict[str, Any]) -> bool:
    return bool(body.get("background")) and bool(body.get("stream"))
