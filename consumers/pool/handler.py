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
from aibroker.guards.policy import Verdict
from aibroker.kafka.clients import decode
from aibroker.kafka.producer import until_written
from aibroker.kafka.publisher import Publisher
from aibroker.prices import STANDARD, Billing, PriceTable, cost, usage_event
from aibroker.rules.breaker import target_key
from aibroker.stores.breaker import Breakers
from aibroker.stores.claims import Claim, ClaimStore
from aibroker.stores.redis import RedisClient, listen
from aibroker.stores.response_cache import ResponseCache, release, remember
from aibroker.stores.results import CANCEL_CHANNEL
from aibroker.telemetry import metrics
from aibroker.telemetry.genai import CallSpans
from consumers.pool.engine import Completion, Engine
from consumers.pool.guardrails import NO_PLAN, OutputBlocked, OutputGuard, OutputPlan
from consumers.pool.responses import streamed
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
        guard: OutputGuard | None = None,
    ) -> None:
        self.guard = guard
        """The tenants' output guardrails, run before a result or a chunk is published."""
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
        plan = await self._plan(request)
        started = time.time()
        try:
            answered = await self._call(request, request.target, plan)
            completion = self._guarded(request, answered, plan)
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
        except (_StreamBroken, OutputBlocked) as ended:  # no retry: see `_ended`
            await self._ended(request, ended, _ms_since(started))
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
        await self._remember(request, result, plan)

    async def _plan(self, request: Request) -> OutputPlan:
        """The output guardrails of the request (read before the call: an answer is never
        paid for without knowing what may be done with it)."""
        return await self.guard.plan(request) if self.guard else NO_PLAN

    def _guarded(self, request: Request, completion: Completion, plan: OutputPlan) -> Completion:
        """The answer as the output policy leaves it; `OutputBlocked` when it refuses it. A
        stream's chunks were guarded as they were released."""
        if _streamed(request):
            return completion
        answer, verdict = plan.answer(completion.response)
        if self.guard is not None and verdict is not None:
            self.guard.noted(request, verdict)
            if verdict.blocked:
                raise OutputBlocked(verdict, completion.response, completion.usage)
        return Completion(answer, completion.usage)

    async def _ended(
        self, request: Request, ended: _StreamBroken | OutputBlocked, latency_ms: float
    ) -> None:
        """A stream that broke once the caller had part of the answer ends with its error; an
        answer the output guard blocked (the provider answered; the tenant's policy refused it)
        is billed with the tokens the provider charged (none known for a stream cut short), as
        a `guardrails` error, audited, and ends with 400 `content_policy_violation`."""
        assert request.target is not None
        if isinstance(ended, _StreamBroken):
            error = ended.error
            await until_written(lambda: self.publisher.fail(request, error), "output")
            return
        await self._record(request.target, ok=True)
        assert self.guard is not None
        guard, verdict, blocked = self.guard, ended.verdict, ended
        billing = Billing.of(blocked.response) if blocked.response else STANDARD
        event = self._bill(
            request, request.target, blocked.usage, latency_ms, billing, error_code="guardrails"
        )
        await until_written(lambda: guard.refuse(request, verdict, event), "output")

    async def _remember(self, request: Request, result: Result, plan: OutputPlan) -> None:
        """A published success into the response cache, when the dispatcher marked it; not
        a restored answer, which holds one caller's values."""
        if self.guard is not None:
            await self.guard.done(request, plan)
        if self.cache is not None and not plan.values:
            await remember(self.cache, request, result, self.cache_timeout_s)

    async def _call(self, request: Request, target: Target, plan: OutputPlan) -> Completion:
        """The engine call, in a client span, cancellable by the client (`_abort`)."""
        streamed = _streamed(request)
        with self.spans.call(request, target, streamed=streamed) as span:
            call = asyncio.ensure_future(
                self._stream(request, target, plan)
                if streamed
                else self.engine.generate(request, target)
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

    async def _stream(self, request: Request, target: Target, plan: OutputPlan) -> Completion:
        """Relay each chunk to the caller as it comes (through the output guard's window,
        when the tenant has one); the joined answer, as released, is the result."""
        chunks: list[dict[str, Any]] = []
        acks: list[asyncio.Future[Any]] = []
        guard = plan.stream()
        source = self.engine.stream(request, target)

        async def release(chunk: dict[str, Any]) -> None:
            acks.append(await self.publisher.chunk(request, len(chunks), chunk))
            chunks.append(chunk)

        try:
            async for chunk in source:
                out = chunk if guard is None else guard.take(chunk)
                if guard is not None and guard.blocked:
                    raise OutputBlocked(_verdict(guard.verdict()))
                if out is not None:
                    await release(out)
            for out in guard.finish() if guard is not None else []:
                await release(out)
        except BrokerError as exc:
            if not chunks:
                raise  # nothing reached the caller yet: retry or fall back as usual
            raise _StreamBroken(exc) from exc
        finally:
            await asyncio.gather(*acks, return_exceptions=True)
            closing = getattr(source, "aclose", None)  # a stopped stream frees its connection
            if closing is not None:
                await closing()
        if self.guard is not None and guard is not None:
            self.guard.noted(request, guard.verdict())
        if request.kind is Kind.RESPONSES:  # the result is a Response (`pool/responses`)
            return streamed(request, chunks)
        response = assemble(chunks)
        usage = response.get("usage")
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


def _streamed(request: Request) -> bool:
    return bool(request.body.get("stream")) and request.reply_to is not None


def _verdict(verdict: Verdict | None) -> Verdict:
    assert verdict is not None  # a blocked guard is on
    return verdict


def _ms_since(started: float) -> float:
    return round((time.time() - started) * 1000, 3)


class _StreamBroken(Exception):
    """The provider failed after part of the answer was streamed to the caller."""

    def __init__(self, error: BrokerError) -> None:
        super().__init__(error.message)
        self.error = error
