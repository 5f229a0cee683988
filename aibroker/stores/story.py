"""A request's story: each provider call it made (target, status, duration, error, cost), kept
beside its state as `aib:story:{<id>}` for as long as the state lasts, for
`GET /admin/v1/requests/{id}/story`.

The usage consumer writes it from the usage events every call already produces (one per call,
failed calls included), once per event, so no hot path pays for it. The dispatcher adds why a
request waited, each time it holds one in a delay topic (`aib:story-waits:{<id>}`: over quota,
a target's breaker open, a retry's backoff), which only work off the hot path does. It is a
view, like the rest of Redis: lost with Redis, and the request's result still says how it
ended."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

import orjson

from aibroker.stores.keyspace import request_key
from aibroker.stores.redis import RedisClient
from schemas.envelopes import UsageEvent

STORY_LENGTH = 64
"""Calls kept per request (the newest): far more than any retry policy makes."""


def call_entry(event: UsageEvent) -> dict[str, Any]:
    """What the story keeps of one call: no prompt, no answer, no key."""
    entry: dict[str, Any] = {
        "at": event.at,
        "provider": event.provider,
        "model": event.upstream_model,
        "status": event.status,
        "duration_ms": round(event.latency_ms, 1),
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
    }
    optional = {
        "error_code": event.error_code,
        "cost_usd": None if event.cost_usd is None else str(event.cost_usd),
        "cached": event.cached or None,
        "saved_usd": None if event.saved_usd is None else str(event.saved_usd),
        "provider_batch": event.provider_batch,
    }
    entry.update({k: v for k, v in optional.items() if v is not None})
    return entry


class WaitReason(StrEnum):
    """Why the dispatcher held a request in a delay topic."""

    QUOTA = "quota"
    """Over one of its tenant's or key's limits (the limit is named)."""
    QUOTA_UNCHECKED = "quota_unchecked"
    """Its quota could not be read (Redis down): async work waits rather than runs unmetered."""
    BREAKER = "breaker"
    """Every target it may go to is cooling down after failures (a breaker open)."""
    RETRY = "retry"
    """Its last attempt failed with a retryable error: the backoff before the next."""


def wait_entry(
    reason: WaitReason, delay_s: float, at: float, detail: str | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": round(at, 3), "reason": reason.value, "delay_s": delay_s}
    if detail:
        entry["detail"] = detail
    return entry


class WaitLog(Protocol):
    async def waited(self, request_id: str, entry: dict[str, Any]) -> None:
        """Add one wait (`wait_entry`) to its request's story."""
        ...


class Story(Protocol):
    async def called(self, event: UsageEvent) -> None:
        """Add one call to its request's story."""
        ...

    async def calls(self, request_id: str) -> list[dict[str, Any]]:
        """The request's calls, in the order they were told (the usage topic's, per request)."""
        ...


class RedisStory:
    def __init__(self, redis: RedisClient, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def called(self, event: UsageEvent) -> None:
        await self._append(request_key("story", event.request_id), call_entry(event))

    async def calls(self, request_id: str) -> list[dict[str, Any]]:
        found = await self._redis.lrange(request_key("story", request_id), 0, -1)
        return [orjson.loads(e) for e in found]

    async def waited(self, request_id: str, entry: dict[str, Any]) -> None:
        await self._append(request_key("story-waits", request_id), entry)

    async def waits(self, request_id: str) -> list[dict[str, Any]]:
        found = await self._redis.lrange(request_key("story-waits", request_id), 0, -1)
        return [orjson.loads(e) for e in found]

    async def _append(self, key: str, entry: dict[str, Any]) -> None:
        """One entry at the end of a request's list, the newest `STORY_LENGTH` kept, for as
        long as the request's state lasts."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, orjson.dumps(entry))
            pipe.ltrim(key, -STORY_LENGTH, -1)
            pipe.expire(key, self._ttl_s)
            await pipe.execute()
