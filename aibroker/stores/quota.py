"""Quota in Redis, atomic across every dispatcher replica: requests/min and tokens/min (token
buckets refilled continuously, one minute's allowance deep), concurrent requests and a monthly
budget, per tenant and per key.

A request is admitted once (`admit`, which also records what it was charged) and settled once
(`settle`, from its terminal result: frees its concurrency slot, reconciles the token estimate
with the real usage, adds its cost to the month's spend). Both are idempotent on request id.

Keys: `aib:q:<scope>:…`, the scope `{t:<tenant>}` or `{t:<tenant>}:k:<key id>` (`rpm`, `tpm`
hashes {v, t}; `conc` a sorted set of request ids scored by lease end; `spend:<YYYYMM>` in
nano-USD), and `aib:q:{t:<tenant>}:adm:<request id>` the admission record: all of a tenant's in
its slot (`keyspace.py`), so one script charges the tenant and its key at once on a cluster.
`settle` finds the scopes a request was charged to in its admission record.

The scripts avoid INCRBYFLOAT and HINCRBYFLOAT: inside Lua they corrupt the heap of Redis 6.2
(the embedded server crashed on them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any, Protocol

from aibroker.limits import Limits
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import cancel_key
from schemas.envelopes import Kind

SCOPES = ("tenant", "key")

_ADMIT = """
local now, id, est = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local lease_until, lease_s = tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[1]) == 1 then return {'admitted', '0'} end
local n = (#KEYS - 1) / 4
local function level(key, limit)
  local b = redis.call('HMGET', key, 'v', 't')
  local v, t = tonumber(b[1]), tonumber(b[2])
  if v == nil then return limit end
  return math.min(limit, v + math.max(0, now - (t or now)) * limit / 60)
end
local spent = {}
for s = 0, n - 1 do
  local k, a, scope = 1 + s * 4, 5 + s * 4, ARGV[6 + n * 4 + s]
  local rpm, tpm = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local conc, budget = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  if rpm >= 0 then
    local v = level(KEYS[k + 1], rpm)
    if v < 1 then return {scope .. '.rpm', tostring((1 - v) * 60 / rpm)} end
    spent[#spent + 1] = {KEYS[k + 1], v - 1}
  end
  if tpm >= 0 then
    local need, v = math.min(est, tpm), level(KEYS[k + 2], tpm)
    if v < need then return {scope .. '.tpm', tostring((need - v) * 60 / tpm)} end
    spent[#spent + 1] = {KEYS[k + 2], v - est}
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
  if conc >= 0 and redis.call('ZCARD', KEYS[k + 3]) >= conc then
    return {scope .. '.concurrency', '1'}
  end
  if budget >= 0 and (tonumber(redis.call('GET', KEYS[k + 4])) or 0) >= budget then
    return {scope .. '.budget', '-1'}
  end
end
for _, b in ipairs(spent) do
  redis.call('HSET', b[1], 'v', b[2], 't', now)
  redis.call('EXPIRE', b[1], 120)
end
local prefixes = {}
for s = 0, n - 1 do
  local conc = KEYS[1 + s * 4 + 3]
  redis.call('ZADD', conc, lease_until, id)
  redis.call('EXPIRE', conc, lease_s)
  prefixes[#prefixes + 1] = string.sub(conc, 1, -6)
end
redis.call('HSET', KEYS[1], 'est', est, 'scopes', table.concat(prefixes, ' '))
redis.call('EXPIRE', KEYS[1], lease_s)
return {'admitted', '0'}
"""

_SETTLE = """
local adm = redis.call('HMGET', KEYS[1], 'est', 'scopes')
if not adm[2] then return 0 end
local est, actual, nano = tonumber(adm[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for prefix in string.gmatch(adm[2], '%S+') do
  redis.call('ZREM', prefix .. ':conc', ARGV[1])
  local tpm = prefix .. ':tpm'
  local v = tonumber(redis.call('HGET', tpm, 'v'))
  if actual >= 0 and actual ~= est and v then
    redis.call('HSET', tpm, 'v', v + est - actual)
  end
  if nano > 0 then
    local spend = prefix .. ':spend:' .. ARGV[4]
    redis.call('INCRBY', spend, nano)
    redis.call('EXPIRE', spend, 3024000)
  end
end
redis.call('DEL', KEYS[1])
return 1
"""


@dataclass(frozen=True)
class Verdict:
    """What `admit` found: admitted, cancelled while waiting, or the limit that was hit and
    when it will fit (`retry_after_s` None: waiting will not help, the budget is spent)."""

    admitted: bool
    cancelled: bool = False
    limit: str | None = None
    retry_after_s: float | None = None


def estimate_tokens(kind: Kind, body: dict[str, Any], default_completion: int) -> int:
    """Tokens charged at admission: ~4 characters a token over the prompt, plus the
    completion's cap (`max_tokens`, else `default_completion`) for chat. OCR counts none."""
    if kind is Kind.OCR:
        return 0
    if kind is Kind.EMBEDDINGS:
        return _chars(body.get("input")) // 4 + 1
    cap = body.get("max_completion_tokens") or body.get("max_tokens") or default_completion
    return _chars(body.get("messages")) // 4 + 1 + int(cap)


def _chars(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int):
        return 1  # a token id
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    if isinstance(value, dict):
        return sum(_chars(v) for v in value.values())
    return 0


NANO = Decimal(1_000_000_000)


@dataclass(frozen=True)
class Bucket:
    """A requests- or tokens-per-minute bucket as a client sees it."""

    limit: int
    remaining: int
    reset_s: float
    """Seconds until it is full again."""


def bucket(stored: list[Any], limit: int, now: float) -> Bucket:
    """The bucket now, from its stored level and time (`HMGET v t`), refilled continuously at
    `limit` per minute up to `limit` (as the admission script computes it)."""
    level, at = (float(x) if x is not None else None for x in stored)
    if level is None:
        return Bucket(limit, limit, 0.0)
    level = min(limit, level + max(0.0, now - (now if at is None else at)) * limit / 60)
    return Bucket(limit, max(0, int(level)), round(max(0.0, limit - level) * 60 / limit, 3))


def to_nano(usd: Decimal) -> int:
    """USD as whole nano-dollars, rounded up (a cost is never under-counted)."""
    return int((usd * NANO).to_integral_value(rounding=ROUND_CEILING))


def month(now: float) -> str:
    return time.strftime("%Y%m", time.gmtime(now))


class Quota(Protocol):
    """Quota admission and settlement, atomic across every dispatcher replica."""

    async def admit(
        self,
        request_id: str,
        tenant: str,
        scopes: list[tuple[str, Limits]],
        tokens: int,
        now: float,
    ) -> Verdict:
        """Charge the request to every scope of its tenant (`quota_scope`) if it fits them all,
        else charge nothing and say which limit it hit. A cancelled request is not charged."""
        ...

    async def settle(
        self, request_id: str, tenant: str, tokens: int | None, cost: Decimal | None, now: float
    ) -> bool:
        """Release the request's admission; True the first time only."""
        ...

    async def in_flight(self, scope: str, now: float) -> int: ...

    async def spend(self, scope: str, now: float) -> Decimal: ...

    async def buckets(self, scope: str, limits: Limits, now: float) -> dict[str, Bucket]:
        """The scope's `rpm` and `tpm` buckets now (only those it has a limit for)."""
        ...

    async def reset(self, scope: str) -> None:
        """Refill the scope's buckets and free its concurrency slots (its spend stays: it is
        the month's bill)."""
        ...

    async def warned(self, scope: str, month: str, pct: int) -> bool:
        """Whether this budget threshold was announced this month (by any replica)."""
        ...

    async def mark_warned(self, scope: str, month: str, pct: int) -> None:
        """Record the threshold as announced (after its messages are written)."""
        ...


class RedisQuota:
    def __init__(self, redis: RedisClient, lease_s: float) -> None:
        self._redis = redis
        self._lease_s = lease_s
        self._admit = redis.register_script(_ADMIT)
        self._settle = redis.register_script(_SETTLE)

    async def admit(
        self,
        request_id: str,
        tenant: str,
        scopes: list[tuple[str, Limits]],
        tokens: int,
        now: float,
    ) -> Verdict:
        """Charge the request to every scope of its tenant (`quota_scope`) if it fits them all,
        else charge nothing and say which limit it hit. A cancelled request is not charged."""
        # The cancel flag is in the request's slot, not the tenant's: read before, on its own.
        if await self._redis.exists(cancel_key(request_id)):
            return Verdict(admitted=False, cancelled=True)
        keys = [_adm(request_id, tenant)]
        args: list[str | float | int] = [now, request_id, tokens, now + self._lease_s]
        args.append(int(self._lease_s))
        for scope, limits in scopes:
            prefix = f"aib:q:{scope}"
            keys += [f"{prefix}:rpm", f"{prefix}:tpm", f"{prefix}:conc"]
            keys.append(f"{prefix}:spend:{month(now)}")
            args += [_or_none(limits.rpm), _or_none(limits.tpm), _or_none(limits.concurrency)]
            budget = limits.budget_usd_month
            args.append(-1 if budget is None else to_nano(budget))
        args += [SCOPES[i] for i in range(len(scopes))]
        name, retry = await self._admit(keys=keys, args=args)
        if name == "admitted":
            return Verdict(admitted=True)
        seconds = float(retry)
        return Verdict(
            admitted=False, limit=str(name), retry_after_s=None if seconds < 0 else seconds
        )

    async def settle(
        self, request_id: str, tenant: str, tokens: int | None, cost: Decimal | None, now: float
    ) -> bool:
        """Release the request's admission; True the first time only."""
        args: list[str | int] = [request_id, -1 if tokens is None else tokens]
        args += [to_nano(cost or Decimal(0)), month(now)]
        return bool(await self._settle(keys=[_adm(request_id, tenant)], args=args))

    async def in_flight(self, scope: str, now: float) -> int:
        count: int = await self._redis.zcount(f"aib:q:{scope}:conc", now, "+inf")
        return count

    async def spend(self, scope: str, now: float) -> Decimal:
        found = await self._redis.get(f"aib:q:{scope}:spend:{month(now)}")
        return Decimal(int(found or 0)) / NANO

    async def buckets(self, scope: str, limits: Limits, now: float) -> dict[str, Bucket]:
        wanted = {
            name: limit for name, limit in (("rpm", limits.rpm), ("tpm", limits.tpm)) if limit
        }
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in wanted:
                pipe.hmget(f"aib:q:{scope}:{name}", ["v", "t"])
            stored = await pipe.execute()
        return {
            name: bucket(s, limit, now)
            for (name, limit), s in zip(wanted.items(), stored, strict=True)
        }

    async def warned(self, scope: str, month: str, pct: int) -> bool:
        return bool(await self._redis.exists(_warned(scope, month, pct)))

    async def mark_warned(self, scope: str, month: str, pct: int) -> None:
        await self._redis.set(_warned(scope, month, pct), "1", ex=40 * 86400)

    async def reset(self, scope: str) -> None:
        await self._redis.delete(f"aib:q:{scope}:rpm", f"aib:q:{scope}:tpm", f"aib:q:{scope}:conc")


def _warned(scope: str, month: str, pct: int) -> str:
    return f"aib:q:{scope}:warned:{month}:{pct}"


def _adm(request_id: str, tenant: str) -> str:
    return f"aib:q:{quota_scope(tenant)}:adm:{request_id}"


def _or_none(limit: int | None) -> int:
    return -1 if limit is None else limit
