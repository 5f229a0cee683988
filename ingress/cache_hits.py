"""Cache hits answered at ingress. A request its cache policy says to look up is looked up under
its alias's first target before it is written; on a hit ingress records the end
(`aibroker.cache_hits`: the result on `results`, the usage event) and answers the caller itself,
so a hit pays no requests topic, dispatcher, or reply topic. A miss, and Redis down or hung,
change nothing: the request is written and the dispatcher looks it up again (it may find the
answer under another target, or wait on an identical miss's single-flight lock).

A hit here skips the dispatcher's admission: it is not charged to the tenant's requests or
tokens per minute, its concurrency or its budget. Those limits guard the providers and the
bill, and a hit reaches neither (docs/guides/cache.md, "Where it sits")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

from redis.exceptions import RedisError
from starlette.responses import Response, StreamingResponse

from aibroker.cache_hits import (
    count_metrics,
    count_stats,
    policy_of,
    publish_hit,
    replay_chunks,
)
from aibroker.kafka.publisher import Publisher
from aibroker.routes import RouteTable, resolve
from aibroker.rules.cache_key import Use, cache_key, plan
from aibroker.settings import CacheSettings
from aibroker.stores.guard import deadline
from aibroker.stores.response_cache import CachedAnswer, ResponseCache
from ingress.streaming import SSE_DONE, sse
from ingress.views import accepted_headers, cache_header, result_response
from schemas.envelopes import CacheMark, Request, Result, Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    request: Request
    """The request, its target set to the one its answer is kept under."""
    answer: CachedAnswer


class IngressCache:
    """The exact cache as ingress uses it: looked up only. Locks and stores are the
    dispatcher's and the pools' (a miss goes their way unchanged)."""

    def __init__(
        self,
        store: ResponseCache,
        publisher: Publisher,
        routes: RouteTable,
        settings: CacheSettings,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._routes = routes
        self._settings = settings
        self._policy = policy_of(settings)
        self._background: set[asyncio.Task[None]] = set()

    async def find(self, request: Request) -> Hit | None:
        """The cached answer to `request` from its alias's first target, when its policy says
        look it up and the answer is there; else None (Redis down or hung included)."""
        chosen = plan(
            request.tenant, request.model, request.kind, request.body, request.cache, self._policy
        )
        if chosen.use is not Use.LOOKUP:
            return None
        target = primary_target(request, self._routes)
        key = cache_key(request.tenant, request.model, request.kind, target, request.body)
        try:
            with deadline(self._settings.lookup_timeout_s):
                answer = await self._store.get(key)
        except RedisError as exc:
            log.info("cache of %s not read at ingress (%r): a miss", request.id, exc)
            return None
        if answer is None:
            return None
        return Hit(request.model_copy(update={"target": target}), answer)

    async def record(self, hit: Hit) -> Result:
        """Write the hit's end (result and usage event, both acknowledged; a Kafka error or
        timeout propagates) and count it: the metrics at once, the shared counts in the
        background (best effort, and no reason for the caller to wait)."""
        assert hit.request.target is not None
        result = await publish_hit(self._publisher, hit.request, hit.answer, to_caller=False)
        saved = hit.answer.cost_usd or Decimal(0)
        count_metrics(hit.request, hit.request.target, CacheMark.HIT, saved)
        counting = asyncio.create_task(
            count_stats(
                self._store, hit.request, CacheMark.HIT, self._settings.lookup_timeout_s, saved
            )
        )
        self._background.add(counting)
        counting.add_done_callback(self._background.discard)
        return result


def primary_target(request: Request, routes: RouteTable) -> Target:
    """The first target listed for `request`'s alias: the one ordered routing tries first, so
    the key its answer is most often stored under (another target's entry is the dispatcher's
    to find). The route resolves: ingress checked the model already."""
    return resolve(request.model, routes, request.kind).targets[0].plain()


def hit_response(result: Result, *, streamed: bool) -> Response:
    """A sync caller's answer to a hit: the body, or (`stream: true`) the stream replayed."""
    if not streamed or result.response is None:
        return result_response(result)
    chunks = replay_chunks(result.response)

    async def events() -> AsyncIterator[bytes]:
        for data in chunks:
            yield sse(data)
        yield SSE_DONE

    headers = accepted_headers(result.id) | cache_header(result.cache)
    headers |= {"x-aibroker-cost": "0", "cache-control": "no-cache"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
