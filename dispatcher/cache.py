"""The exact response cache in front of the dispatch topics: once routing has chosen a target,
a request whose answer is cached is answered here (results, and the reply topic of a sync
caller, as a pool would) and never reaches a provider; a miss takes the key's single-flight
lock and goes on, marked where its pool stores the answer. Identical misses that race wait for
the first one's answer (bounded by the lock's lease). Redis down or hung is a miss. After an
exact miss, the semantic cache (`semantic.py`, where configured) may answer a paraphrase.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

from redis.exceptions import RedisError

from aibroker.cache_hits import count, policy_of, publish_hit
from aibroker.kafka.publisher import Publisher
from aibroker.rules.cache_key import Use, cache_key, plan
from aibroker.settings import CacheSettings
from aibroker.stores.guard import deadline
from aibroker.stores.response_cache import CachedAnswer, ResponseCache
from dispatcher.semantic import SemanticCache
from schemas.envelopes import CacheEntry, CacheMark, Request

log = logging.getLogger(__name__)


class CacheFront:
    def __init__(
        self,
        store: ResponseCache,
        publisher: Publisher,
        settings: CacheSettings,
        *,
        semantic: SemanticCache | None = None,
    ):
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self.policy = policy_of(settings)
        self.semantic = semantic
        """After an exact miss, the answer of a similar prompt (None: not configured)."""

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
            if self.semantic is not None:  # stored for paraphrases too, never looked up
                await self.semantic.find(routed, key, chosen.ttl_s, search=False)
            entry = CacheEntry(key=key, ttl_s=chosen.ttl_s)
            return routed.model_copy(update={"cache_mark": CacheMark.BYPASS, "cache_entry": entry})
        answer, leader = await self._answer_or_lock(routed, key)
        if answer is not None:
            await self._hit(routed, answer)
            return None
        if self.semantic is not None and await self._semantic_hit(
            routed, key, chosen.ttl_s, leader
        ):
            return None
        await self._count(routed, CacheMark.MISS)
        entry = CacheEntry(key=key, ttl_s=chosen.ttl_s, lock=routed.id if leader else None)
        return routed.model_copy(update={"cache_mark": CacheMark.MISS, "cache_entry": entry})

    async def _semantic_hit(self, routed: Request, key: str, ttl_s: int, leader: bool) -> bool:
        """Whether `routed`, an exact miss, was answered by the semantic cache (then the lock
        it took on its key is freed: the identical requests waiting on it look again)."""
        assert self.semantic is not None
        found = await self.semantic.find(routed, key, ttl_s, search=True)
        if found is None:
            return False
        if leader:
            try:
                with deadline(self.settings.lookup_timeout_s):
                    await self.store.unlock(key, routed.id)
            except RedisError:
                pass  # its lease frees it
        scored = routed.model_copy(update={"cache_score": found.score})
        await self._hit(scored, found.answer, CacheMark.SEMANTIC)
        return True

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

    async def _hit(
        self, request: Request, answer: CachedAnswer, mark: CacheMark = CacheMark.HIT
    ) -> None:
        """Answer `request` as its pool would (`cache_hits.publish_hit`: chunks first for a
        sync stream, then the result and a usage event marked cached), then count it."""
        assert request.target is not None
        await publish_hit(self.publisher, request, answer, mark=mark, to_caller=True)
        await self._count(request, mark, answer.cost_usd or Decimal(0))

    async def _count(self, request: Request, mark: CacheMark, saved: Decimal = Decimal(0)) -> None:
        """The metrics, and the shared counts of `GET /admin/v1/cache/stats` (best effort)."""
        assert request.target is not None
        await count(
            self.store, request, request.target, mark, self.settings.lookup_timeout_s, saved
        )
