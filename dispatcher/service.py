"""The dispatcher's handlers: requests → admission → target topics, outcomes → retry or
terminal error, delay topics → back to their destination when due."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Sequence
from functools import partial

from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from redis.exceptions import RedisError

from aibroker.errors import BrokerError
from aibroker.kafka.acceptance import refused_at_ingress
from aibroker.kafka.clients import decode
from aibroker.kafka.publisher import DEST_HEADER, DUE_HEADER, Publisher
from aibroker.routes import RouteTable
from aibroker.rules.breaker import Reading, State, target_key
from aibroker.rules.offload import Offload
from aibroker.signing import SIGNATURE_HEADER, refusal
from aibroker.stores.breaker import Breakers
from aibroker.stores.story import WaitLog, WaitReason, wait_entry
from aibroker.telemetry import metrics, tracing
from dispatcher.admission import Admission
from dispatcher.cache import CacheFront
from dispatcher.delays import SleepFor, WaitInTopic, delay_step
from dispatcher.guardrails import InputGuard
from dispatcher.health import HealthView
from dispatcher.injection import InjectionGuard
from dispatcher.lanes import LaneGate
from dispatcher.offload import OffloadRouter
from dispatcher.policy import (
    Blame,
    Dispatch,
    Drop,
    Expire,
    Fail,
    Fallback,
    ProbeTarget,
    Reject,
    RetryPolicy,
    SendAnyway,
    SendUnchanged,
    Wait,
    after_quota,
    avoid_down_target,
    blame,
    next_step,
    step_when_due,
    without_quota,
)
from dispatcher.routing import Decision, choose_target
from schemas.audit import AuditEntry, AuditOutcome
from schemas.envelopes import Mode, Outcome, Request, Status, Target
from schemas.terminal import cancelled_error, expired_error, terminal
from topics.catalog import TopicNames

log = logging.getLogger(__name__)

EnvelopeCheck = Callable[[bytes, Sequence[tuple[str, bytes]], str], str | None]
"""Why an envelope (value, headers, tenant) is refused, or None (`signing.refusal` with the
service's secrets bound)."""
ACCEPT_UNSIGNED: EnvelopeCheck = partial(
    refusal, broker_secret=None, producer_secrets={}, required=False
)


class Dispatcher:
    def __init__(
        self,
        publisher: Publisher,
        routes: RouteTable,
        policy: RetryPolicy,
        admission: Admission,
        health: HealthView,
        breakers: Breakers,
        lanes: LaneGate,
        names: TopicNames,
        *,
        envelopes: EnvelopeCheck = ACCEPT_UNSIGNED,
        cache: CacheFront | None = None,
        offload: OffloadRouter | None = None,
        injection: InjectionGuard | None = None,
        waits: WaitLog | None = None,
    ) -> None:
        self.waits = waits
        """Where each hold is told, for the request's story (`aibroker/stores/story.py`)."""
        self.envelopes = envelopes
        self.guard = InputGuard(admission.tenant, publisher, injection)
        self.offload = offload
        self.cache = cache
        self.lanes = lanes
        self.publisher = publisher
        self.routes = routes
        self.policy = policy
        self.admission = admission
        self.health = health
        self.breakers = breakers
        self.names = names
        self.dispatch_topics = set(routes.dispatch_topics(names))

    async def on_interactive(self, record: ConsumerRecord[bytes, bytes]) -> None:
        with self.lanes.interactive():
            await self.on_request(record)

    async def on_batch(self, record: ConsumerRecord[bytes, bytes]) -> None:
        await self.lanes.batch_turn()
        await self.on_request(record)

    async def on_request(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if refused_at_ingress(record.headers or (), record.timestamp_type, record.timestamp):
            # Ingress answered 503 before Kafka took it: the client was told it was refused.
            log.info("dropping %r: written after ingress had refused it", record.key)
            metrics.LATE_WRITES_DROPPED.inc()
            return
        request = decode(Request, record.value)  # undecodable: the worker sends it to the DLQ
        refused = self.envelopes(record.value, record.headers or (), request.tenant)
        if refused is not None:
            await self._unproven(request, record.topic, refused)
            return
        try:
            guarded = await self.guard.guarded(request, record.headers or ())
            if guarded is not None:  # None: blocked by the tenant's policy, and ended
                await self.admit_and_route(guarded)
        except (KafkaError, RedisError):
            raise  # the worker retries: nothing was produced
        except Exception as exc:
            log.exception("routing failed on %s", request.id)
            await self.publisher.internal_failure(request, exc)

    async def _unproven(self, request: Request, topic: str, reason: str) -> None:
        """An envelope that does not prove its tenant: kept for operators, audited, never
        served, and never answered (a result would reach the tenant it claims)."""
        log.warning("refused %s for tenant %s on %s: %s", request.id, request.tenant, topic, reason)
        entry = AuditEntry(
            at=time.time(),
            actor=f"producer:{topic}",
            action="envelope.refused",
            tenant=request.tenant,
            target=request.id,
            outcome=AuditOutcome.REFUSED,
            detail={"reason": reason},
        )
        await asyncio.gather(
            self.publisher.dead_letter(
                request, f"unauthenticated: {reason}", kind="unauthenticated"
            ),
            self.publisher.audit(entry),
        )

    async def admit_and_route(self, request: Request) -> None:
        """Quota first (a request admitted before, redelivered or back from a wait, passes
        at once), then routing."""
        now = time.time()
        try:
            checked = await self.admission.admit(request, now)
        except RedisError as exc:
            log.warning("quota of %s not checked (%r)", request.id, exc)
            await self._without_quota(request, without_quota(request.mode, request.deadline, now))
            return
        if isinstance(checked, BrokerError):
            await self.publisher.fail(request, checked)
            return
        step = after_quota(checked, request.mode, request.deadline, now, random.random())
        if isinstance(step, Wait):
            metrics.QUOTA_WAITS.labels(checked.limit or "").inc()
            await self._hold(
                request, step.delay_s, self._lane(request), WaitReason.QUOTA, checked.limit
            )
        elif isinstance(step, Reject | Expire):
            if isinstance(step, Reject):
                metrics.QUOTA_REJECTIONS.labels(checked.limit or "").inc()
            await self._end(request, step)
        elif isinstance(step, Drop):
            # Ingress already published a cancelled result; this one also carries the
            # request's webhook and batch line, for the deliverer and the batch runner.
            cancelled = terminal(request, Status.CANCELLED, error=cancelled_error())
            await self.publisher.result(cancelled, request.reply_to)
        else:
            await self.route(request)

    async def _without_quota(self, request: Request, step: Wait | Reject | Expire) -> None:
        if isinstance(step, Wait):
            metrics.QUOTA_WAITS.labels("unavailable").inc()
            await self._hold(request, step.delay_s, self._lane(request), WaitReason.QUOTA_UNCHECKED)
        else:
            await self._end(request, step)

    async def route(self, request: Request, decision: Decision | None = None) -> None:
        """Send the request to a target (`decision`: the first choice, when the caller made it
        already), or hold it, or end it."""
        health = self.health.current
        while True:
            if decision is None:
                decision = choose_target(request, self.routes, time.time(), health, random.random())
            if not isinstance(decision, Dispatch) or not decision.probe:
                break
            if await self._claim_probe(decision.target):
                break  # this request probes the half-open target
            taken = {**health.breakers, target_key(decision.target): State.OPEN}
            health = dataclasses.replace(health, breakers=taken)  # another has the probe
            decision = None
        if isinstance(decision, Dispatch):
            # Counted before the first await: handlers routing concurrently see it at once.
            self.health.dispatched(decision.target)
            routed = request.model_copy(update={"target": decision.target, "probe": decision.probe})
            tracing.event(
                "route",
                target=target_key(decision.target),
                attempt=request.attempt,
                probe=decision.probe,
            )
            if self.cache is not None:  # a hit is answered here, never reaching the target
                served = await self.cache.serve(routed)
                if served is None:
                    return
                routed = served
            await self.publisher.forward(self._topic(routed, decision.target), routed)
        elif isinstance(decision, Wait):
            await self._hold(request, decision.delay_s, self._lane(request), WaitReason.BREAKER)
        else:
            await self._end(request, decision)

    def _topic(self, request: Request, target: Target) -> str:
        """The target's dispatch topic, or its provider's batch API's when offload says so."""
        if self.offload is not None:
            choice = self.offload.choose(request, target, time.time())
            if isinstance(choice, Offload):
                metrics.OFFLOAD_LINES.labels(target.provider).inc()
                return self.names.dispatch_batch(target.provider)
        return self.routes.topic(self.names, target)

    async def _end(self, request: Request, decision: Reject | Expire) -> None:
        if isinstance(decision, Reject):
            await self.publisher.fail(request, decision.error)
        else:
            await self.publisher.result(
                terminal(request, Status.EXPIRED, error=expired_error()), request.reply_to
            )

    def _lane(self, request: Request) -> str:
        return self.names.lane(request.priority)

    async def _hold(
        self,
        request: Request,
        delay_s: float,
        dest: str,
        reason: WaitReason,
        detail: str | None = None,
    ) -> None:
        """Send the request to `dest` after `delay_s`, through a delay topic, and tell its
        story why (best effort: a story that misses a wait is better than a held request)."""
        await self.publisher.delayed(dest, request, request.id, delay_s)
        if self.waits is not None:
            entry = wait_entry(reason, delay_s, time.time(), detail)
            try:
                await self.waits.waited(request.id, entry)
            except RedisError as exc:
                log.info("wait of %s not told to its story (%r)", request.id, exc)

    async def on_outcome(self, record: ConsumerRecord[bytes, bytes]) -> None:
        outcome = decode(Outcome, record.value)
        request = outcome.request
        if request.target is None:
            raise ValueError("an outcome without a target cannot be retried")
        now = time.time()
        if outcome.error.retryable and request.deadline is not None and now >= request.deadline:
            await self._end(request, Expire())  # it ran out of time: expired, not failed
            return
        onward = _for_next_target(request, request.attempt + 1)
        health = self.health.current
        next_target = choose_target(onward, self.routes, now, health, random.random())
        fault = Blame.REQUEST
        if outcome.error.retryable and request.mode is not Mode.SYNC:
            reading = await self._read_breaker(request.target, now)
            fault = blame(request.mode, request.probe, reading, request.target_attempt)
        step = next_step(
            request.target_attempt,
            outcome.error,
            outcome.retry_after,
            self.policy,
            can_fall_back=isinstance(next_target, Dispatch),
            jitter=random.random(),
            now=now,
            deadline=request.deadline,
            fault=fault,
            cooldown_s=health.cooldown_s,
        )
        if isinstance(step, Fallback):
            await self._fall_back(request, onward, next_target)
        elif isinstance(step, Expire):
            await self._end(request, step)
        elif isinstance(step, Fail):
            if step.exhausted:
                reason = f"retries exhausted after {request.attempt} attempts: "
                await self.publisher.dead_letter(
                    request, reason + outcome.error.message, kind="exhausted"
                )
            await self.publisher.fail(request, outcome.error)
        else:
            again = request.model_copy(
                update={
                    "attempt": request.attempt + 1,
                    "target_attempt": request.target_attempt + int(step.counts),
                    "probe": False,
                }
            )
            metrics.RETRIES.labels(request.target.provider).inc()
            tracing.event(
                "retry",
                target=target_key(request.target),
                attempt=again.attempt,
                delay_s=step.delay_s,
                blame=fault.value,
            )
            dest = self.routes.topic(self.names, request.target)
            code = outcome.error.code or outcome.error.type
            await self._hold(again, step.delay_s, dest, WaitReason.RETRY, code)

    async def _read_breaker(self, target: Target, now: float) -> Reading:
        """The target's breaker as it is now, read from Redis: the pool recorded the failure
        before it reported it, so this reading holds it (the view may be a refresh behind: a
        failure that opened the breaker was charged to its request). With Redis down, the
        view's state, without the count of failures in a row."""
        try:
            return await self.breakers.read(target, now)
        except RedisError as exc:
            log.warning("breaker of %s not read (%r); the view decides", target_key(target), exc)
            return Reading(self.health.current.state(target))

    async def _fall_back(self, request: Request, onward: Request, decision: Decision) -> None:
        """Route `onward` (`request` given up on its target) to the next target, `decision`."""
        assert request.target is not None
        log.info("request %s falls back from %s", request.id, target_key(request.target))
        metrics.FALLBACKS.labels(request.target.provider).inc()
        tracing.event("fallback", source=target_key(request.target))
        await self.route(onward, decision)

    async def on_delayed(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Send a delayed request on when it is due (`delays`: it waits in the delay topics,
        its last second here). A retry due while its target's breaker is open falls back if
        it can, else waits out the cool-down, its attempts untouched."""
        headers = dict(record.headers or ())
        dest = headers[DEST_HEADER].decode()
        wait = delay_step(float(headers[DUE_HEADER]), time.time())
        if isinstance(wait, WaitInTopic):
            topic = self.names.retry(wait.delay)
            await self.publisher.forward_record(
                topic, record.value, record.key, list(record.headers or ())
            )
            metrics.DELAY_HOPS.labels(wait.delay).inc()
            return
        if isinstance(wait, SleepFor):
            await asyncio.sleep(wait.seconds)
        request = self._retry_if_some_target_down(dest, record.value)
        target = request.target if request else None
        step = step_when_due(self.health.current.state(target) if target else State.CLOSED)
        if request is None or target is None or isinstance(step, SendUnchanged):
            signature = [(k, v) for k, v in headers.items() if k == SIGNATURE_HEADER]
            await self.publisher.forward_record(dest, record.value, record.key, signature or None)
        elif isinstance(step, ProbeTarget) and await self._claim_probe(target):
            await self.publisher.forward(dest, request.model_copy(update={"probe": True}))
        else:
            await self._avoid_down_target(request, dest)

    async def _claim_probe(self, target: Target) -> bool:
        """Whether this request probes the half-open target; with Redis down, no one does
        (the target stays avoided until the breakers can be read again)."""
        try:
            return await self.breakers.claim_probe(target)
        except RedisError as exc:
            log.warning("probe of %s not claimed (%r)", target_key(target), exc)
            return False

    def _retry_if_some_target_down(self, dest: str, value: bytes) -> Request | None:
        """The retry in `value`, decoded, when it is one (its `dest` a dispatch topic) and some
        breaker is not closed (it may be its target's); else None, without decoding it (the
        common case costs nothing)."""
        if dest not in self.dispatch_topics:
            return None
        if all(s is State.CLOSED for s in self.health.current.breakers.values()):
            return None
        return decode(Request, value)

    async def _avoid_down_target(self, request: Request, dest: str) -> None:
        """A retry whose target is down: the next target, else wait (or expire); a sync one
        with nowhere else to go is sent anyway (its caller is waiting for an answer)."""
        onward = _for_next_target(request, request.attempt)
        now, health = time.time(), self.health.current
        next_target = choose_target(onward, self.routes, now, health, random.random())
        step = avoid_down_target(
            isinstance(next_target, Dispatch),
            request.mode,
            request.deadline,
            now,
            health.cooldown_s,
        )
        if isinstance(step, Fallback):
            await self._fall_back(request, onward, next_target)
        elif isinstance(step, SendAnyway):
            await self.publisher.forward(dest, request)
        elif isinstance(step, Expire):
            await self._end(request, step)
        else:
            await self._hold(request, step.delay_s, dest, WaitReason.BREAKER)


def _for_next_target(request: Request, attempt: int) -> Request:
    """The request given up on its current target (added to `tried`), to be routed to the next
    one as attempt `attempt`."""
    assert request.target is not None
    update = {"tried": [*request.tried, request.target], "target": None, "target_attempt": 1}
    return request.model_copy(update={**update, "attempt": attempt, "probe": False})
