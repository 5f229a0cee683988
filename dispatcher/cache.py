"""The exact response cache in front of the dispatch topics: once routing has chosen a target,
a request whose answer is cached is answered here (results, and the reply topic of a sync
caller, as a pool would) and never reaches a provider; a miss takes the key's single-flight
lock and goes on, marked where its pool stores the answer. Identical misses that race wait for
the first one's answer (bounded by the lock's lease). Redis down or hung is a miss.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError

from aibroker.ids import new_id
from aibroker.kafka.publisher import Publisher
from aibroker.rules.cache_key import CachePolicy, Use, cache_key, plan
from aibroker.settings import CacheSettings
from aibroker.stores.guard import deadline
from aibroker.stores.response_cache import CachedAnswer, ResponseCache
from aibroker.telemetry import metrics
from schemas.chunks import as_chunk
from schemas.envelopes import CacheEntry, CacheMark, Request, Status, UsageEvent
from schemas.terminal import terminal

log = logging.getLogger(__name__)


def policy_of(settings: CacheSettings) -> CachePolicy:
    return CachePolicy(
        enabled=settings.enabled,
        ttl_s=settings.ttl_s,
        tenant_ttl_s=dict(settings.tenant_ttl_s),
        alias_ttl_s=dict(settings.alias_ttl_s),
        any_temperature_tenants=frozenset(settings.any_temperature_tenants),
    )


class CacheFront:
    def __init__(self, store: ResponseCache, publisher: Publisher, settings: CacheSettings):
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self.policy = policy_of(settings)

    async def serve(self, routed: Request) -> Request | None:
        """None when `routed` (its target chosen) was answered from the cache; else the
        request to send to its target, marked (`cache_mark`, and `cache_entry` when its
        answer is to be stored)."""
        assert routed.target is not None
        chosen = plan(
            routed.tenant, routed.model, routed.kind, routed.body, routed.cache, self.policy
        )
        if chosen.use is Use.BYPASS:
            await self._count(routed, CacheMark.BYPASS)
            return routed.model_copy(update={"cache_mark": CacheMark.BYPASS})
        key = cache_key(routed.tenant, routed.model, routed.kind, routed.target, routed.body)
        if chosen.use is Use.STORE:
            await self._count(routed, CacheMark.BYPASS)
            entry = CacheEntry(key=key, ttl_s=chosen.ttl_s)
            return routed.model_copy(update={"cache_mark": CacheMark.BYPASS, "cache_entry": entry})
        answer, leader = await self._answer_or_lock(routed, key)
        if answer is not None:
            await self._hit(routed, answer)
            return None
        await self._count(routed, CacheMark.MISS)
        entry = CacheEntry(key=key, ttl_s=chosen.ttl_s, lock=routed.id if leader else None)
        return routed.model_copy(update={"cache_mark": CacheMark.MISS, "cache_entry": entry})

    async def _answer_or_lock(self, request: Request, key: str) -> tuple[CachedAnswer | None, bool]:
        """The cached answer, or (None, whether this request now holds the key's lock). While
        another request holds it, wait for its answer: until the lock is gone (then take it),
        its lease has passed since this one began waiting, or the request's deadline. Any Redis
        failure ends the wait as a miss without the lock."""
        give_up = time.monotonic() + self.settings.lock_lease_s
        if request.deadline is not None:
            give_up = min(give_up, time.monotonic() + max(0.0, request.deadline - time.time()))
        try:
            while True:
                with deadline(self.settings.lookup_timeout_s):
                    answer = await self.store.get(key)
                    if answer is not None:
                        return answer, False
                    if await self.store.lock(key, request.id, self.settings.lock_lease_s):
                        return None, True
                if time.monotonic() >= give_up:
                    log.info("gave up waiting on the cached answer for %s", request.id)
                    return None, False
                # Polled, bounded: the one answering may be any pool, in any process.
                await asyncio.sleep(self.settings.wait_poll_s)
        except RedisError as exc:
            log.warning("cache of %s not read (%r): a miss", request.id, exc)
            return None, False

    async def _hit(self, request: Request, answer: CachedAnswer) -> None:
        """Answer `request` as its pool would: chunks first for a sync stream, then the result
        (usage reported, cost 0) and a usage event marked cached with the cost it saved."""
        assert request.target is not None
        hit = request.model_copy(update={"cache_mark": CacheMark.HIT, "target": answer.served_by})
        result = terminal(hit, Status.SUCCEEDED, response=answer.response)
        result.usage = answer.usage
        result.cost_usd = Decimal(0)
        result.service_ms = 0.0
        if request.body.get("stream") and request.reply_to is not None:
            acks = [
                await self.publisher.chunk(hit, seq, data)
                for seq, data in enumerate(replay_chunks(answer.response))
            ]
            await asyncio.gather(*acks)
        usage = answer.usage
        event = UsageEvent(
            id=new_id("use"),
            request_id=request.id,
            tenant=request.tenant,
            key_id=request.key_id,
            user=request.user,
            model=request.model,
            provider=answer.served_by.provider,
            upstream_model=answer.served_by.model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cached_tokens=0,
            cost_usd=Decimal(0),
            latency_ms=0.0,
            at=time.time(),
            cached=True,
            saved_usd=answer.cost_usd,
        )
        await asyncio.gather(
            self.publisher.result(result, request.reply_to), self.publisher.usage(event)
        )
        saved = answer.cost_usd or Decimal(0)
        target = answer.served_by
        metrics.CACHE_SAVED.labels(request.tenant, target.provider, target.model).inc(float(saved))
        await self._count(request, CacheMark.HIT, saved)

    async def _count(self, request: Request, mark: CacheMark, saved: Decimal = Decimal(0)) -> None:
        """The metric, and the shared counts of `GET /admin/v1/cache/stats` (best effort)."""
        assert request.target is not None
        provider, model = request.target.provider, request.target.model
        metrics.CACHE_LOOKUPS.labels(request.tenant, provider, model, mark.value).inc()
        try:
            with deadline(self.settings.lookup_timeout_s):
                await self.store.count(request.tenant, request.model, mark, saved)
        except RedisError:
            pass  # the Prometheus counter has it; the shared count is best effort


def replay_chunks(response: dict[str, Any]) -> list[dict[str, Any]]:
    """A cached `chat.completion` as the stream a provider would have sent: the content, then
    the finish reason (and usage) in a chunk of its own."""
    whole = as_chunk(response)
    usage = whole.pop("usage", None)
    choices = whole["choices"]
    content = {**whole, "choices": [{**c, "finish_reason": None} for c in choices]}
    end_choices = [
        {"index": c["index"], "delta": {}, "finish_reason": c["finish_reason"]} for c in choices
    ]
    end = {**whole, "choices": end_choices, **({"usage": usage} if usage else {})}
    return [content, end]
