"""The exact response cache in Redis: answers by key (`rules/cache_key.py` makes the keys),
the single-flight lock of a key being answered, and the hit/miss/bypass counts that
`GET /admin/v1/cache/stats` shows.

| key | type | what |
| --- | --- | --- |
| `aib:rc:<tenant>:<alias>:<hash>` | string, TTL | the cached answer (`CachedAnswer` JSON) |
| `aib:rc:<tenant>:<alias>:<hash>:lock` | string, lease | the request answering it (single-flight) |
| `aib:rcstats` | hash | `<tenant>\\t<alias>\\t<mark>` → count, `…\\tsaved_nano` → nano-USD |
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel
from redis.exceptions import RedisError

from aibroker.rules.cache_key import scope_pattern
from aibroker.stores.guard import deadline
from aibroker.stores.redis import RedisClient
from aibroker.telemetry import metrics
from schemas.envelopes import CacheMark, Request, Result, Status, Target
from schemas.openai import Usage

log = logging.getLogger(__name__)

LOCK_SUFFIX = ":lock"
STATS_KEY = "aib:rcstats"
NANO = Decimal(1_000_000_000)

# KEYS[1]: the lock. ARGV[1]: the owner, ARGV[2]: the lease (ms). Taken when free, renewed when
# the owner holds it already (its request routed again); 1 when the owner holds it now.
_LOCK = """
local held = redis.call('GET', KEYS[1])
if not held then return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 or 0 end
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""

# KEYS[1]: the lock. ARGV[1]: the owner that must hold it. Deleted only if it still does.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class CachedAnswer(BaseModel):
    """A provider's successful answer, as a later identical request is served it."""

    response: dict[str, Any]
    usage: Usage | None = None
    cost_usd: Decimal | None = None
    """What the provider call cost: what each hit saves."""
    served_by: Target
    stored_at: float


class ResponseCache(Protocol):
    async def get(self, key: str) -> CachedAnswer | None: ...

    async def put(self, key: str, answer: CachedAnswer, ttl_s: int) -> None: ...

    async def lock(self, key: str, owner: str, lease_s: float) -> bool:
        """Whether `owner` now answers `key` (no one else held its lock)."""
        ...

    async def locked(self, key: str) -> bool:
        """Whether some request is answering `key` now."""
        ...

    async def unlock(self, key: str, owner: str) -> None: ...

    async def count(self, tenant: str, alias: str, mark: CacheMark, saved: Decimal) -> None: ...

    async def clear(self, tenant: str | None, alias: str | None) -> int:
        """Delete the entries of a tenant and/or alias (None: all); how many were deleted."""
        ...

    async def stats(self, tenant: str | None = None) -> dict[str, Any]:
        """Per tenant (only `tenant`'s, when given) and alias: hits, misses, bypasses, dollars
        saved; and the entries stored now."""
        ...


class RedisResponseCache:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._lock = redis.register_script(_LOCK)
        self._unlock = redis.register_script(_UNLOCK)

    async def get(self, key: str) -> CachedAnswer | None:
        found = await self._redis.get(key)
        return CachedAnswer.model_validate_json(found) if found else None

    async def put(self, key: str, answer: CachedAnswer, ttl_s: int) -> None:
        await self._redis.set(key, answer.model_dump_json(), ex=ttl_s)

    async def lock(self, key: str, owner: str, lease_s: float) -> bool:
        done = await self._lock(keys=[key + LOCK_SUFFIX], args=[owner, int(lease_s * 1000)])
        return bool(done)

    async def locked(self, key: str) -> bool:
        return bool(await self._redis.exists(key + LOCK_SUFFIX))

    async def unlock(self, key: str, owner: str) -> None:
        await self._unlock(keys=[key + LOCK_SUFFIX], args=[owner])

    async def count(self, tenant: str, alias: str, mark: CacheMark, saved: Decimal) -> None:
        field = f"{tenant}\t{alias}\t"
        await self._redis.hincrby(STATS_KEY, field + mark.value, 1)
        if saved:
            await self._redis.hincrby(STATS_KEY, field + "saved_nano", int(saved * NANO))

    async def clear(self, tenant: str | None, alias: str | None) -> int:
        deleted = 0
        batch: list[bytes | str] = []
        async for key in self._redis.scan_iter(match=scope_pattern(tenant, alias), count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await self._delete(batch)
                batch = []
        return deleted + (await self._delete(batch) if batch else 0)

    async def _delete(self, keys: list[bytes | str]) -> int:
        entries = sum(not _text(k).endswith(LOCK_SUFFIX) for k in keys)
        for key in keys:  # one at a time: a cluster's keys lie in many slots
            await self._redis.unlink(key)
        return entries

    async def stats(self, tenant: str | None = None) -> dict[str, Any]:
        raw = await self._redis.hgetall(STATS_KEY)
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for field, value in raw.items():
            name, alias, what = _text(field).split("\t")
            if tenant is not None and name != tenant:
                continue
            row = rows.setdefault(
                (name, alias),
                {"tenant": name, "model": alias, "hit": 0, "miss": 0, "bypass": 0},
            )
            if what == "saved_nano":
                row["saved_usd"] = str(Decimal(int(value)) / NANO)
            else:
                row[what] = int(value)
        entries = 0
        async for key in self._redis.scan_iter(match=scope_pattern(tenant), count=1000):
            entries += not _text(key).endswith(LOCK_SUFFIX)
        return {"entries": entries, "data": sorted(rows.values(), key=_order), "at": time.time()}


def _order(row: dict[str, Any]) -> tuple[str, str]:
    return row["tenant"], row["model"]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def remember(
    cache: ResponseCache, request: Request, result: Result, timeout_s: float
) -> None:
    """Store a pool's successful answer where the dispatcher said (`request.cache_entry`), for
    the identical requests to come and those waiting on its lock (`release` frees it). Only a
    success with a whole answer is stored: an error, a cancelled or expired request, a broken
    stream never reach here with one. Redis down or hung costs the entry, never the answer
    (it is already published)."""
    entry = request.cache_entry
    if entry is None or result.status is not Status.SUCCEEDED or result.response is None:
        return
    if result.served_by is None:
        return
    answer = CachedAnswer(
        response=result.response,
        usage=result.usage,
        cost_usd=result.cost_usd,
        served_by=result.served_by,
        stored_at=time.time(),
    )
    try:
        with deadline(timeout_s):
            await cache.put(entry.key, answer, entry.ttl_s)
    except RedisError as exc:
        log.warning("answer of %s not cached (%r)", request.id, exc)
        metrics.CACHE_STORED.labels("failed").inc()
        return
    metrics.CACHE_STORED.labels("stored").inc()


async def release(cache: ResponseCache, request: Request, timeout_s: float) -> None:
    """Free the single-flight lock `request` holds, if any (after a failure: the requests
    waiting on it go on to call the provider themselves, none is stranded). Best effort: the
    lock's lease frees it anyway."""
    entry = request.cache_entry
    if entry is None or entry.lock is None:
        return
    try:
        with deadline(timeout_s):
            await cache.unlock(entry.key, entry.lock)
    except RedisError as exc:
        log.warning("cache lock of %s not freed (%r)", request.id, exc)
