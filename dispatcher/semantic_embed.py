"""The semantic cache's embeddings, through the embeddings pool like any other request: on the
embeddings model's dispatch topic, under the caller's tenant (its usage shows there), marked
`internal` (announced to no webhook) and outside any batch. Its result is read back from
Redis, where the results sink puts every result, then deleted.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from aibroker.ids import new_id
from aibroker.kafka.publisher import Publisher
from aibroker.routes import RouteTable
from aibroker.stores.guard import deadline
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import RequestStore
from aibroker.stores.semantic_cache import forget_result
from dispatcher.health import HealthView
from dispatcher.policy import Dispatch
from dispatcher.routing import choose_target
from schemas.envelopes import Kind, Mode, Request, Result
from schemas.vectors import vectors_of
from topics.catalog import TopicNames

POLL_S = 0.01
"""How often a lookup looks for its embedding in Redis: an embedding takes a few tens of ms
(two Kafka hops, the model, the results sink), so a finer poll would only cost Redis calls."""


class Embedder(Protocol):
    async def embed(self, caller: Request, text: str, until: float) -> list[float] | None:
        """The vector of `text`, embedded on behalf of `caller`, by `until` (Unix time)."""
        ...


class PoolEmbedder:
    """Embeddings through the pool that serves `model`, as requests on its dispatch topic."""

    def __init__(
        self,
        publisher: Publisher,
        routes: RouteTable,
        names: TopicNames,
        health: HealthView,
        results: RequestStore,
        redis: RedisClient,
        *,
        model: str,
        redis_timeout_s: float,
    ) -> None:
        self.publisher = publisher
        self.routes = routes
        self.names = names
        self.health = health
        self.results = results
        self.redis = redis
        self.model = model
        self.redis_timeout_s = redis_timeout_s

    async def embed(self, caller: Request, text: str, until: float) -> list[float] | None:
        """The vector of `text`, embedded for `caller` (its tenant, key and user); None when
        the model's targets are all down or it failed. `until`: the request's deadline (the
        pool drops it, expired, once past)."""
        result = await self.embed_all(caller, [text], until)
        vectors = vectors_of(result) if result is not None else None
        return vectors[0] if vectors else None

    async def embed_all(self, caller: Request, texts: list[str], until: float) -> Result | None:
        """One embeddings request for `texts` on the model's dispatch topic, and its result;
        None when no target of the model may take it now."""
        now = time.time()
        request = Request(
            id=new_id("req"),
            tenant=caller.tenant,
            key_id=caller.key_id,
            user=caller.user,
            kind=Kind.EMBEDDINGS,
            model=self.model,
            body={"model": self.model, "input": texts, "encoding_format": "base64"},
            mode=Mode.ASYNC,
            deadline=until,
            created_at=now,
            internal=True,
        )
        decision = choose_target(request, self.routes, now, self.health.current)
        if not isinstance(decision, Dispatch) or decision.probe:
            return None  # a half-open target's probe is the dispatcher's, not ours to spend
        routed = request.model_copy(update={"target": decision.target})
        await self.publisher.forward(self.routes.topic(self.names, decision.target), routed)
        return await self._result(routed.id)

    async def _result(self, request_id: str) -> Result:
        """The request's result once the results sink stored it, then deleted (polled every
        `POLL_S`: one GET each, only while a lookup waits; the caller's deadline bounds it)."""
        while True:
            with deadline(self.redis_timeout_s):
                state = await self.results.get(request_id)
            if state is not None and state.result is not None:
                with deadline(self.redis_timeout_s):
                    await forget_result(self.redis, request_id)
                return state.result
            await asyncio.sleep(POLL_S)
