"""An offload pool: lines from `dispatch.<provider>.batch` gathered into provider batches, each
saved in Redis before its lines' offsets are committed, then created at the provider, polled
at a backoff, and each line ended from its results like any other result. A line the provider
batch did not answer (expired, cancelled, a retryable failure, the whole batch failed) goes
back to the dispatcher as a retryable outcome, and a retry is never offloaded: it finishes on
demand. A restart reads the batches in Redis and goes on polling them."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from aibroker.errors import BrokerError, ProviderUnavailable
from aibroker.ids import new_id
from aibroker.kafka.clients import decode
from aibroker.kafka.publisher import Publisher
from aibroker.prices import Billing, PriceTable, cost, usage_event
from aibroker.stores.offload import BatchState, OffloadStore, ProviderBatch
from aibroker.telemetry import metrics
from consumers.offload.api import Answered, BatchAPI, LineEnd, Refused
from consumers.offload.bounds import Limits, due, give_up_at, next_poll_delay, take
from schemas.envelopes import Outcome, Request, Status
from schemas.terminal import cancelled_error, expired_error, terminal

log = logging.getLogger(__name__)
TICK_S = 0.2
"""How often the pool looks for a provider batch to send or to poll."""


@dataclass
class _Waiting:
    request: Request
    line: dict[str, Any]
    size: int
    saved: asyncio.Future[None]


@dataclass
class _Gathering:
    lines: list[_Waiting] = field(default_factory=list)
    oldest_at: float | None = None


class OffloadPool:
    def __init__(
        self,
        apis: dict[str, BatchAPI],
        store: OffloadStore,
        publisher: Publisher,
        prices: PriceTable,
        limits: Limits,
        *,
        state_ttl_s: int,
    ) -> None:
        self.apis = apis
        self.store = store
        self.publisher = publisher
        self.prices = prices
        self.limits = limits
        self.state_ttl_s = state_ttl_s
        self.gathering: dict[tuple[str, str], _Gathering] = {}

    async def on_request(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Wait until the line is in a provider batch saved in Redis (then its offset may be
        committed), unless it is in one already (a redelivery) or out of time."""
        request = decode(Request, record.value)
        if request.target is None or request.target.provider not in self.apis:
            raise ValueError(f"no offload pool here for {request.target}")
        provider = request.target.provider
        if request.deadline is not None and time.time() >= request.deadline:
            expired = terminal(request, Status.EXPIRED, error=expired_error())
            await self.publisher.result(expired, request.reply_to)
            return
        if await self.store.taken_by(request.id, provider) is not None:
            return
        api = self.apis[provider]
        line = api.line(request, request.target)
        waiting = _Waiting(
            request, line, len(orjson.dumps(line)), asyncio.get_running_loop().create_future()
        )
        gathering = self.gathering.setdefault((provider, api.group(request)), _Gathering())
        if not gathering.lines:
            gathering.oldest_at = time.time()
        gathering.lines.append(waiting)
        await waiting.saved

    async def run(self) -> None:
        """Send what is due and poll what is in flight, until cancelled."""
        while True:
            try:
                await self.send_due(time.time())
                await self.poll_due(time.time())
            except Exception:  # Kafka or Redis away: every batch stays saved, tried again
                log.exception("offload step failed; trying again")
                await asyncio.sleep(1.0)
            await asyncio.sleep(TICK_S)

    async def send_due(self, now: float) -> None:
        for (provider, group), gathering in list(self.gathering.items()):
            limits = self._limits(provider)
            while due([w.size for w in gathering.lines], gathering.oldest_at, now, limits):
                count = take([w.size for w in gathering.lines], limits)
                lines, gathering.lines = gathering.lines[:count], gathering.lines[count:]
                gathering.oldest_at = now if gathering.lines else None
                await self._save(provider, group, lines, now)

    def _limits(self, provider: str) -> Limits:
        """The settings' bounds, within the provider API's own."""
        own = self.apis[provider].max_bytes
        if own is None or own >= self.limits.max_bytes:
            return self.limits
        return replace(self.limits, max_bytes=own)

    async def _save(self, provider: str, group: str, lines: list[_Waiting], now: float) -> None:
        batch = ProviderBatch(
            id=new_id("obat"),
            provider=provider,
            group=group,
            created_at=now,
            next_poll_at=now,
            poll_delay_s=0.0,
            lines=len(lines),
            give_up_at=give_up_at([w.request.deadline for w in lines], self.limits.margin_s),
        )
        try:
            await self.store.add(batch, [w.request for w in lines], self.state_ttl_s)
        except Exception as exc:  # Redis down: each handler raises it, and is retried in place
            for w in lines:
                w.saved.set_exception(exc)
            return
        for w in lines:
            w.saved.set_result(None)

    async def poll_due(self, now: float) -> None:
        for provider in self.apis:
            try:
                batches = await self.store.in_flight(provider)
            except Exception as exc:
                log.warning("provider batches of %s not read (%r)", provider, exc)
                continue
            metrics.OFFLOAD_BATCHES.labels(provider).set(len(batches))
            for batch in batches:
                if batch.next_poll_at <= now:
                    await self.step(batch, now)

    async def step(self, batch: ProviderBatch, now: float) -> None:
        """Create the batch or read its state; on an error of the provider, try again later."""
        api = self.apis[batch.provider]
        try:
            if batch.state is BatchState.SUBMITTING:
                await self._create(api, batch)
            elif batch.provider_id is not None and await self._over(api, batch, now):
                await self._finish(api, batch)
                return
        except BrokerError as exc:
            if batch.state is BatchState.SUBMITTING and not exc.retryable:
                log.warning("provider batch %s refused (%s): its lines go on demand", batch.id, exc)
                await self._end_lines(batch, {})
                return
            log.info("provider batch %s: %r; trying again later", batch.id, exc)
        batch.poll_delay_s = next_poll_delay(batch.poll_delay_s or None, self.limits)
        batch.next_poll_at = time.time() + batch.poll_delay_s
        await self.store.save(batch)

    async def _create(self, api: BatchAPI, batch: ProviderBatch) -> None:
        """Created once: the first try is recorded durably before the call, and a batch tried
        before (a crash or a timeout between the provider's create and our record of its id)
        is looked for at the provider before it is created again."""
        provider_id = None
        if batch.create_tried_at is None:
            batch.create_tried_at = time.time()
            await self.store.save(batch)
        else:
            claimed = await self.store.claimed(batch.provider)
            provider_id = await api.find(
                batch.id, since=batch.create_tried_at, lines=batch.lines, claimed=claimed
            )
            if provider_id is not None:
                log.warning("provider batch %s found at the provider: adopted", batch.id)
        if provider_id is None:
            requests = await self.store.requests(batch)
            lines = [api.line(r, r.target) for r in requests if r.target is not None]
            provider_id = await api.create(lines, batch.group, batch.id)
        batch.provider_id = provider_id
        batch.state = BatchState.IN_PROGRESS
        await self.store.save(batch)

    async def _over(self, api: BatchAPI, batch: ProviderBatch, now: float) -> bool:
        """Whether the batch has ended, or is cancelled now because its lines need the time
        left to finish on demand."""
        assert batch.provider_id is not None
        if await self._all_cancelled(batch):
            log.info("provider batch %s: every line cancelled; cancelling it", batch.id)
            await api.cancel(batch.provider_id)
            return True
        if batch.give_up_at is not None and now >= batch.give_up_at:
            log.warning("provider batch %s is late: cancelled, its lines go on demand", batch.id)
            try:
                await api.cancel(batch.provider_id)
            except BrokerError as exc:
                log.warning("provider batch %s not cancelled (%r)", batch.id, exc)
            return True
        return await api.ended(batch.provider_id)

    async def _all_cancelled(self, batch: ProviderBatch) -> bool:
        """Whether the clients cancelled every line (a caller's batch cancelled, say): then
        the provider batch is cancelled too, and its lines end `cancelled`."""
        ids = [r.id for r in await self.store.requests(batch)]
        return bool(ids) and len(await self.store.cancelled(ids)) == len(ids)

    async def _finish(self, api: BatchAPI, batch: ProviderBatch) -> None:
        assert batch.provider_id is not None
        requests = await self.store.requests(batch)
        ends = await api.results(batch.provider_id, requests)
        await self._end_lines(batch, ends, requests)

    async def _end_lines(
        self, batch: ProviderBatch, ends: dict[str, LineEnd], requests: list[Request] | None = None
    ) -> None:
        """Each line's result, or its way back; then the batch is forgotten. A crash before
        that repeats these writes: the sinks keep the first result, the ledger counts a usage
        event once by its id."""
        if requests is None:
            requests = await self.store.requests(batch)
        cancelled = await self.store.cancelled([r.id for r in requests])
        sends = [self._end_line(batch, r, ends.get(r.id), r.id in cancelled) for r in requests]
        await asyncio.gather(*sends)
        await self.store.finish(batch)

    async def _end_line(
        self, batch: ProviderBatch, request: Request, end: LineEnd | None, cancelled: bool
    ) -> None:
        if cancelled and not isinstance(end, Answered):
            result = terminal(request, Status.CANCELLED, error=cancelled_error())
            await self.publisher.result(result, request.reply_to)
        elif isinstance(end, Answered):
            await self._succeeded(batch, request, end)
        elif isinstance(end, Refused):
            await self.publisher.fail(request, end.error)
        else:
            await self._back(request, f"provider batch {batch.provider_id or batch.id}")

    async def _back(self, request: Request, why: str) -> None:
        """A retryable outcome: the dispatcher retries the line, on demand (a retry is never
        offloaded), or expires it if its deadline has passed."""
        error = ProviderUnavailable(f"not answered through the batch API ({why})")
        await self.publisher.outcome(Outcome(request=request, error=error.info()))

    async def _succeeded(self, batch: ProviderBatch, request: Request, end: Answered) -> None:
        assert request.target is not None
        target = request.target
        result = terminal(request, Status.SUCCEEDED, response=end.response)
        result.usage = end.usage
        result.provider_batch = batch.provider_id
        price = self.prices.find(target.provider, target.model)
        event = None
        if end.usage is not None:
            billed = cost(price, end.usage, Billing(batch=True)) if price else None
            event = usage_event(
                request,
                target,
                end.usage,
                id=f"use_{request.id}_offload",  # one id per line: billed once however often
                cost_usd=billed,
                latency_ms=round((time.time() - batch.created_at) * 1000, 3),
                provider_batch=batch.provider_id,
            )
            result.cost_usd = billed
            if price is not None and billed is not None:
                saved = cost(price, end.usage) - billed
                metrics.OFFLOAD_SAVED.labels(request.tenant, target.provider, target.model).inc(
                    float(saved)
                )
        sends = [self.publisher.result(result, request.reply_to)]
        if event is not None:
            sends.append(self.publisher.usage(event))
        await asyncio.gather(*sends)
