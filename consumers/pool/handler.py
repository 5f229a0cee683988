"""A consumer pool's handler: claim the request, run the engine, publish what came of it.

Success → `results` (+ the reply topic of a sync caller). Failure → `outcomes`, where the
dispatcher decides between retry and a terminal error. The claim is marked done only after
that output is acknowledged, so a crash at any point leads to a redelivery, never a loss.
While Kafka is unreachable a finished call's output waits for it (the claim held): the provider
is never called again because an answer could not be written.
While Redis is unreachable the pool works unclaimed: duplicates are possible, losses are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import ConsumerRecord
from redis.exceptions import RedisError

from aibroker.errors import BrokerError, PayloadTooLarge
from aibroker.kafka.clients import decode
from aibroker.kafka.producer import until_written
from aibroker.kafka.publisher import Publisher
from aibroker.prices import STANDARD, Billing, PriceTable, cost, usage_event
from aibroker.responses_wire import from_chat
from aibroker.rules.breaker import target_key
from aibroker.stores.breaker import Breakers
from aibroker.stores.claims import Claim, ClaimStore
from aibroker.stores.redis import RedisClient, listen
from aibroker.stores.response_cache import ResponseCache, release, remember
from aibroker.stores.results import CANCEL_CHANNEL
from aibroker.telemetry import metrics
from aibroker.telemetry.genai import CallSpans
from consumers.pool.engine import Completion, Engine
from schemas.chunks import assemble
from schemas.envelopes import Kind, Outcome, Request, Result, Status, Target, UsageEvent
from schemas.openai import Usage
from schemas.terminal import cancelled_error, expired_error, terminal

log = logging.getLogger(__name__)


class Pool:
    def __init__(
        self,
        engine: Engine,
        publisher: Publisher,
        claims: ClaimStore,
        prices: PriceTable,
        breakers: Breakers,
        *,
        owner: str,
        lease_s: float,
        cache: ResponseCache | None = None,
        cache_timeout_s: float = 0.25,
        spans: CallSpans | None = None,
    ) -> None:
        self.spans = spans or CallSpans()
        """The span around each engine call (the gen_ai conventions where asked for)."""
        self.cache = cache
        """Where a success is stored when the dispatcher marked it (`cache_entry`)."""
        self.cache_timeout_s = cache_timeout_s
        self.breakers = breakers
        self.running: dict[str, asyncio.Task[Completion]] = {}
        """Engine calls in flight, by request id: what a client's cancel aborts."""
        self.engine = engine
        self.publisher = publisher
        self.claims = claims
        self.prices = prices
        self.owner = owner
        self.lease_s = lease_s

    async def on_request(self, record: ConsumerRecord[bytes, bytes]) -> None:
        request = decode(Request, record.value)
        if request.deadline is not None and time.time() >= request.deadline:
            await self.publisher.result(
                terminal(request, Status.EXPIRED, error=expired_error()), request.reply_to
            )
            return
        if not await self._claim(request):
            return
        renewer = asyncio.create_task(self._renew(request))
        try:
            await self._run(request)
        except BaseException:
            renewer.cancel()
            with contextlib.suppress(RedisError):
                await self.claims.release(request.id, request.attempt, self.owner)
            raise
        renewer.cancel()
        with contextlib.suppress(RedisError):
            await self.claims.mark_done(request.id, request.attempt)
        if self.cache is not None:  # whatever came of it, identical requests wait no longer
            await release(self.cache, request, self.cache_timeout_s)

    async def _run(self, request: Request) -> None:
        if request.target is None:
            raise ValueError("request reached a pool without a target")
        started = time.time()
        try:
            completion = await self._call(request, request.target)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the pool itself is stopping: the request will be redelivered
            log.info("aborted %s: the client cancelled it", request.id)
            metrics.POOL_CANCELLED.labels("running").inc()
            result = terminal(request, Status.CANCELLED, error=cancelled_error())
            await until_written(lambda: self.publisher.result(result, request.reply_to), "output")
            return
        except BrokerError as exc:
            # A call cut short by the request's own deadline says nothing about the provider.
            if request.deadline is None or time.time() < request.deadline:
                await self._record(request.target, ok=not exc.retryable and exc.http_status < 500)
            outcome = Outcome(request=request, error=exc.info(), retry_after=exc.retry_after)
            failed = self._bill(
                request,
                request.target,
                None,
                _ms_since(started),
                error_code=exc.error_code or "error",
            )

            async def report() -> None:
                await asyncio.gather(self.publisher.outcome(outcome), self.publisher.usage(failed))

            await until_written(report, "output")
            return
        except _StreamBroken as broken:  # the caller has part of the answer: no retry
            error = broken.error
            await until_written(lambda: self.publisher.fail(request, error), "output")
            return
        except Exception as exc:  # a bug, not the provider: end the request, keep the evidence
            log.exception("engine failed on %s", request.id)
            failure = exc
            await until_written(lambda: self.publisher.internal_failure(request, failure), "output")
            return
        await self._record(request.target, ok=True)
        service_ms = _ms_since(started)
        result = terminal(request, Status.SUCCEEDED, response=completion.response)
        result.usage = completion.usage
        result.service_ms = service_ms
        result.queued_ms = round((started - request.created_at) * 1000, 3)
        event = None
        if completion.usage is not None:
            billing = Billing.of(completion.response)
            event = self._bill(request, request.target, completion.usage, service_ms, billing)
            result.cost_usd = event.cost_usd

        async def publish() -> None:
            sends = [self.publisher.result(result, request.reply_to)]
            if event is not None:
                sends.append(self.publisher.usage(event))
            await asyncio.gather(*sends)

        try:
            await until_written(publish, "output")
        except MessageSizeTooLargeError:
            too_large = PayloadTooLarge(
                "The answer is larger than the broker's message limit; send fewer inputs "
                "per request (or ask the operator to raise AIBROKER_KAFKA_MAX_MESSAGE_BYTES).",
                code="result_too_large",
            )
            await until_written(lambda: self.publisher.fail(request, too_large), "output")
            return
        await self._remember(request, result)

    async def _remember(self, request: Request, result: Result) -> None:
        """A published success into the response cache, when the dispatcher marked it."""
        if self.cache is not None:
            await remember(self.cache, request, result, self.cache_timeout_s)

    async def _call(self, request: Request, target: Target) -> Completion:
        """The engine call, in a client span, cancellable by the client (`_abort`)."""
        streamed = bool(request.body.get("stream")) and request.reply_to is not None
        with self.spans.call(request, target, streamed=streamed) as span:
            call = asyncio.ensure_future(
                self._stream(request, target) if streamed else self.engine.generate(request, target)
            )
            self.running[request.id] = call
            call.add_done_callback(lambda _: self.running.pop(request.id, None))
            completion = await call
            self.spans.answered(span, completion.response, completion.usage)
            return completion

    async def watch_cancels(self, redis: RedisClient) -> None:
        """Abort the engine call of each request a client cancels while it runs (vLLM frees
        its sequence, an HTTP call to a provider is closed)."""
        await listen(redis, CANCEL_CHANNEL, self._abort)

    def _abort(self, request_id: str) -> None:
        call = self.running.get(request_id)
        if call is not None:
            call.cancel()

    async def _record(self, target: Target, *, ok: bool) -> None:
        """Feed the target's shared circuit breaker (best effort: Redis may be down)."""
        try:
            opened = await self.breakers.record(target, ok, time.time())
        except RedisError as exc:
            log.warning("breaker of %s not updated (%r)", target_key(target), exc)
            return
        if opened:
            log.warning("circuit breaker of %s opened", target_key(target))
            metrics.BREAKERS_OPENED.labels(target.provider).inc()

    def _bill(
        self,
        request: Request,
        target: Target,
        usage: Usage | None,
        latency_ms: float,
        billing: Billing = STANDARD,
        **error: str,
    ) -> UsageEvent:
        """The usage event of one provider call: its tokens and cost, or (with `error_code`)
        a failed call, for the error counts of usage analytics."""
        price = self.prices.find(target.provider, target.model) if usage else None
        return usage_event(
            request,
            target,
            usage,
            status="error" if error else "ok",
            error_code=error.get("error_code"),
            cost_usd=cost(price, usage, billing) if price and usage else None,
            latency_ms=latency_ms,
        )

    async def _stream(self, request: Request, target: Target) -> Completion:
        """Relay each chunk to the caller as it comes; the joined answer is the result."""
        chunks: list[dict[str, Any]] = []
        acks: list[asyncio.Future[Any]] = []
        try:
            async for chunk in self.engine.stream(request, target):
                acks.append(await self.publisher.chunk(request, len(chunks), chunk))
                chunks.append(chunk)
        except BrokerError as exc:
            if not chunks:
                raise  # nothing reached the caller yet: retry or fall back as usual
            raise _StreamBroken(exc) from exc
        finally:
            await asyncio.gather(*acks, return_exceptions=True)
        response = assemble(chunks)
        usage = response.get("usage")
        if request.kind is Kind.RESPONSES:  # streamed over chat: the result is a Response
            response = from_chat(response, request.body, request.id, request.created_at)
        return Completion(
            response, Usage.model_validate(usage) if isinstance(usage, dict) else None
        )

    async def _claim(self, request: Request) -> bool:
        """True when this pool should do the work; waits out another owner's live lease."""
        while True:
            try:
                found = await self.claims.acquire(
                    request.id, request.attempt, self.owner, request.tenant
                )
            except RedisError as exc:
                log.warning("claims unavailable (%r); working on %s unclaimed", exc, request.id)
                return True
            if found is Claim.ACQUIRED:
                return True
            if found is Claim.DONE:
                log.info("skipping %s: already done", request.id)
                return False
            if found is Claim.CANCELLED:
                metrics.POOL_CANCELLED.labels("queued").inc()
                result = terminal(request, Status.CANCELLED, error=cancelled_error())
                await self.publisher.result(result, request.reply_to)
                return False
            await asyncio.sleep(self.lease_s / 4)

    async def _renew(self, request: Request) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            with contextlib.suppress(RedisError):
                await self.claims.renew(request.id, request.attempt, self.owner)


def _ms_since(started: float) -> float:
    return round((time.time() - started) * 1000, 3)


class _StreamBroken(Exception):
    """The provider failed after part of the answer was streamed to the caller."""

    def __init__(self, error: BrokerError) -> None:
        super().__init__(error.message)
        self.error = error
