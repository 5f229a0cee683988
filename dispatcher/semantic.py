"""The semantic cache, after the exact cache missed: the request's last user turn is embedded
through the embeddings pool, and the nearest earlier prompt of the same context (tenant,
target, system prompt, tools, every other parameter: `semantic_key.py`) in Qdrant answers it
when it is near enough and the lexical guard agrees. Otherwise the prompt is stored as a point
naming the exact key its answer will be cached under, for the paraphrases to come.

The embedding is a request like any other on the embeddings pool (`semantic_embed.py`).
Anything slow or down (the pool, Kafka, Redis, Qdrant) makes the lookup a plain miss within
`semantic_timeout_s`, never an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from aibroker.settings import CacheSettings
from aibroker.stores.guard import deadline
from aibroker.stores.response_cache import CachedAnswer, ResponseCache
from aibroker.stores.semantic_cache import (
    IndexUnavailable,
    Neighbour,
    Point,
    SemanticIndex,
    collection_name,
)
from dispatcher.semantic_embed import Embedder
from dispatcher.semantic_key import SemanticPolicy, accepts, context_hash, key_text
from schemas.envelopes import Request

log = logging.getLogger(__name__)

FAILURES = (TimeoutError, IndexUnavailable, RedisError, KafkaError)
"""What makes a lookup a plain miss."""


@dataclass(frozen=True)
class Found:
    """A semantic hit: the cached answer of a similar prompt, and how similar it is."""

    answer: CachedAnswer
    score: float


def policy_of(settings: CacheSettings) -> SemanticPolicy:
    return SemanticPolicy(
        tenants=frozenset(settings.semantic_tenants),
        aliases=frozenset(settings.semantic_aliases),
        threshold=settings.semantic_threshold,
        max_messages=settings.semantic_max_messages,
        max_chars=settings.semantic_max_chars,
    )


class SemanticCache:
    def __init__(
        self,
        index: SemanticIndex,
        embedder: Embedder,
        answers: ResponseCache,
        settings: CacheSettings,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.answers = answers
        self.settings = settings
        self.policy = policy_of(settings)

    async def find(self, request: Request, key: str, ttl_s: int, *, search: bool) -> Found | None:
        """The answer of a similar earlier prompt (`search`), or None; on None, the request's
        prompt is stored as a point naming `key`, where its answer will be cached for `ttl_s`.
        Not taking part (`key_text`), or anything failing or late: None, and no point."""
        assert request.target is not None
        text = key_text(request.tenant, request.model, request.kind, request.body, self.policy)
        if text is None:
            return None
        target, budget_s = request.target, self.settings.semantic_timeout_s
        collection = collection_name(request.tenant, target, self.settings.semantic_embedding_model)
        context = context_hash(request.tenant, request.model, request.kind, target, request.body)
        try:
            async with asyncio.timeout(budget_s):
                vector = await self.embedder.embed(request, text, time.time() + budget_s)
                if vector is None:
                    return None
                if search:
                    found = await self._nearest(collection, vector, context, text, key)
                    if found is not None:
                        return found
        except FAILURES as exc:
            log.info("semantic lookup of %s skipped (%r): a miss", request.id, exc)
            return None
        now = time.time()
        point = Point(vector, text, key, context, stored_at=now, expires_at=now + ttl_s)
        try:
            async with asyncio.timeout(budget_s):
                await self.index.upsert(collection, point)
        except (TimeoutError, IndexUnavailable) as exc:
            log.info("semantic point of %s not stored (%r)", request.id, exc)
        return None

    async def _nearest(
        self, collection: str, vector: list[float], context: str, text: str, key: str
    ) -> Found | None:
        near = await self.index.nearest(collection, vector, context, time.time())
        if near is None or near.key == key:
            return None  # nothing near, or this very request's own point (its answer is gone)
        if not accepts(near.score, text, near.text, self.policy.threshold):
            return None
        answer = await self._answer(near.key)
        if answer is None:
            await self._drop(collection, near)  # its answer expired, was cleared, or failed
            return None
        return Found(answer, round(near.score, 4))

    async def _answer(self, key: str) -> CachedAnswer | None:
        """The answer cached under `key`; while the request that stored the point is still
        being answered (it holds the key's lock), its answer, waited for as the exact cache's
        single flight waits (within the lookup's budget: past it, a miss). None: no answer
        is coming (the lock is gone and the answer with it)."""
        while True:
            with deadline(self.settings.lookup_timeout_s):
                answer = await self.answers.get(key)
                if answer is not None:
                    return answer
                if not await self.answers.locked(key):
                    # The pool stores the answer, then frees the lock: read once more.
                    return await self.answers.get(key)
            await asyncio.sleep(self.settings.wait_poll_s)

    async def _drop(self, collection: str, near: Neighbour) -> None:
        """Delete a point whose answer is gone (best effort: a later lookup tries again)."""
        try:
            await self.index.delete(collection, [near.id])
        except IndexUnavailable as exc:
            log.info("semantic point %s not deleted (%r)", near.id, exc)
