"""A response-cache hit, ended the one way wherever it is found: ingress (before the request is
written, so no Kafka hop is paid) and the dispatcher (once routing chose a target: another
target's entry, a single-flight waiter, a direct producer's request) both record it here.

The record of the end is what a pool's success would have been: the terminal result on
`results` (usage reported, `cost_usd` 0, marked with how the cache served it) and a usage event
marked cached with what the provider call would have cost. A sync stream is replayed as the
chunks a provider would have sent.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError

from aibroker.kafka.publisher import Publisher
from aibroker.prices import usage_event
from aibroker.rules.cache_key import CachePolicy
from aibroker.settings import CacheSettings
from aibroker.stores.guard import deadline
from aibroker.stores.response_cache import CachedAnswer, ResponseCache
from aibroker.telemetry import metrics
from schemas.chunks import as_chunk
from schemas.envelopes import CacheMark, Kind, Request, Result, Status, Target, UsageEvent
from schemas.terminal import terminal


def policy_of(settings: CacheSettings) -> CachePolicy:
    """The settings as the pure rules read them (`rules/cache_key.py` `plan`)."""
    return CachePolicy(
        enabled=settings.enabled,
        ttl_s=settings.ttl_s,
        tenant_ttl_s=dict(settings.tenant_ttl_s),
        alias_ttl_s=dict(settings.alias_ttl_s),
        any_temperature_tenants=frozenset(settings.any_temperature_tenants),
    )


def hit_result(request: Request, answer: CachedAnswer, mark: CacheMark = CacheMark.HIT) -> Result:
    """The terminal result of `request` answered with `answer`: its usage, cost 0, no service
    time, served by the target that made the answer."""
    served = request.model_copy(update={"cache_mark": mark, "target": answer.served_by})
    response = answer.response
    if request.kind is Kind.RESPONSES:  # a Response object carries its own request's id
        response = {**response, "id": request.id}
    result = terminal(served, Status.SUCCEEDED, response=response)
    result.usage = answer.usage
    result.cost_usd = Decimal(0)
    result.service_ms = 0.0
    return result


def hit_usage(request: Request, answer: CachedAnswer) -> UsageEvent:
    """The usage event of a hit: the answer's tokens, cost 0, `saved_usd` what it saved."""
    usage = answer.usage
    return usage_event(
        request,
        answer.served_by,
        usage,
        cached_tokens=0,
        cost_usd=Decimal(0),
        latency_ms=0.0,
        cached=True,
        saved_usd=answer.cost_usd,
    )


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


async def publish_hit(
    publisher: Publisher,
    request: Request,
    answer: CachedAnswer,
    *,
    mark: CacheMark = CacheMark.HIT,
    to_caller: bool,
) -> Result:
    """Record the end of `request`, answered with `answer`: its result on `results` and its
    usage event, both acknowledged before this returns (the result is the record of the end:
    status document, webhooks, results rebuild). `to_caller`: the caller waits on its ingress's
    reply topic (the dispatcher's hits), so a sync stream's chunks go there first, then the
    result; ingress answers its own hits and passes False."""
    result = hit_result(request, answer, mark)
    reply_to = request.reply_to if to_caller else None
    if reply_to is not None and request.body.get("stream"):
        streamed = request.model_copy(update={"cache_mark": mark})
        acks = [
            await publisher.chunk(streamed, seq, data)
            for seq, data in enumerate(replay_chunks(answer.response))
        ]
        await asyncio.gather(*acks)
    await asyncio.gather(
        publisher.result(result, reply_to), publisher.usage(hit_usage(request, answer))
    )
    return result


def count_metrics(
    request: Request, target: Target, mark: CacheMark, saved: Decimal = Decimal(0)
) -> None:
    """What the cache did for `request` (routed to `target`), in the Prometheus counters."""
    metrics.CACHE_LOOKUPS.labels(request.tenant, target.provider, target.model, mark.value).inc()
    if saved:
        metrics.CACHE_SAVED.labels(request.tenant, target.provider, target.model).inc(float(saved))


async def count_stats(
    store: ResponseCache,
    request: Request,
    mark: CacheMark,
    timeout_s: float,
    saved: Decimal = Decimal(0),
) -> None:
    """The same in the shared counts of `GET /admin/v1/cache/stats`, best effort: Redis down
    costs only those (the Prometheus counters have it)."""
    try:
        with deadline(timeout_s):
            await store.count(request.tenant, request.model, mark, saved)
    except RedisError:
        pass


async def count(
    store: ResponseCache,
    request: Request,
    target: Target,
    mark: CacheMark,
    timeout_s: float,
    saved: Decimal = Decimal(0),
) -> None:
    """Both counts of what the cache did for `request`."""
    count_metrics(request, target, mark, saved)
    await count_stats(store, request, mark, timeout_s, saved)
