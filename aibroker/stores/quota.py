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
from decimal import ROUND_CEILING, Decimal
from typing import Protocol

from aibroker.limits import Limits
from aibroker.rules.quota import Bucket, Verdict, bucket
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import cancel_key

SCOPES = ("tenant", "key")
"""The names of the scopes a request is charged to, in order, as a hit limit names them."""
UNLIMITED = -1
"""What the admission script reads as no limit."""

# Admit a request: charge it to every scope (the tenant's, then its key's) if it fits them all,
# else charge nothing. With n scopes, s = 0 … n-1 (0 the tenant):
#   KEYS[1]          the admission record `aib:q:{t:<tenant>}:adm:<request id>`: a hash of
#                    `est` (tokens charged) and `scopes` (the scope prefixes, space-separated)
#   KEYS[2 + s*4]    scope s's `…:rpm` bucket, a hash of `v` (level) and `t` (when last set)
#   KEYS[3 + s*4]    scope s's `…:tpm` bucket, the same
#   KEYS[4 + s*4]    scope s's `…:conc`, request ids scored by the end of their lease
#   KEYS[5 + s*4]    scope s's `…:spend:<YYYYMM>`, the month's spend in nano-USD
#   ARGV[1]          now (Unix seconds)
#   ARGV[2]          the request id
#   ARGV[3]          the tokens it is charged (its estimate)
#   ARGV[4]          when its concurrency lease ends (Unix seconds)
#   ARGV[5]          the lease (s): the TTL of the admission record and the `conc` sets
#   ARGV[6 + s*4]    scope s's requests/min  ┐
#   ARGV[7 + s*4]    scope s's tokens/min    │ UNLIMITED (-1): no such limit
#   ARGV[8 + s*4]    scope s's concurrency   │
#   ARGV[9 + s*4]    scope s's monthly budget in nano-USD ┘
#   ARGV[6 + n*4 + s]  scope s's name in the limit it reports (`SCOPES`: tenant, key)
# Returns {'admitted', '0'} (a request admitted before, too: it is never charged twice), or
# {'<scope>.<rpm|tpm|concurrency|budget>', seconds until it fits ('-1': never, the budget)}.
_ADMIT = """
local admission = KEYS[1]
local now, id, est = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local lease_until, lease_s = tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', admission) == 1 then return {'admitted', '0'} end
local n = (#KEYS - 1) / 4
local function level(key, limit)
  local b = redis.call('HMGET', key, 'v', 't')
  local v, t = tonumber(b[1]), tonumber(b[2])
  if v == nil then return limit end
  return math.min(limit, v + math.max(0, now - (t or now)) * limit / 60)
end
local spent = {}
for s = 0, n - 1 do
  local rpm_key, tpm_key = KEYS[2 + s * 4], KEYS[3 + s * 4]
  local conc_key, spend_key = KEYS[4 + s * 4], KEYS[5 + s * 4]
  local rpm, tpm = tonumber(ARGV[6 + s * 4]), tonumber(ARGV[7 + s * 4])
  local conc, budget = tonumber(ARGV[8 + s * 4]), tonumber(ARGV[9 + s * 4])
  local scope = ARGV[6 + n * 4 + s]
  if rpm >= 0 then
    local v = level(rpm_key, rpm)
    if v < 1 then return {scope .. '.rpm', tostring((1 - v) * 60 / rpm)} end
    spent[#spent + 1] = {rpm_key, v - 1}
  end
  if tpm >= 0 then
    local need, v = math.min(est, tpm), level(tpm_key, tpm)
    if v < need then return {scope .. '.tpm', tostring((need - v) * 60 / tpm)} end
    spent[#spent + 1] = {tpm_key, v - est}
  end
  redis.call('ZREMRANGEBYSCORE', conc_key, '-inf', now)
  if conc >= 0 and redis.call('ZCARD', conc_key) >= conc then
    return {scope .. '.concurrency', '1'}
  end
  if budget >= 0 and (tonumber(redis.call('GET', spend_key)) or 0) >= budget then
    return {scope .. '.budget', '-1'}
  end
end
for _, b in ipairs(spent) do
  redis.call('HSET', b[1], 'v', b[2], 't', now)
  redis.call('EXPIRE', b[1], 120)
end
local prefixes = {}
for s = 0, n - 1 do
  local conc_key = KEYS[4 + s * 4]
  redis.call('ZADD', conc_key, lease_until, id)
  redis.call('EXPIRE', conc_key, lease_s)
  prefixes[#prefixes + 1] = string.sub(conc_key, 1, -6)
end
redis.call('HSET', admission, 'est', est, 'scopes', table.concat(prefixes, ' '))
redis.call('EXPIRE', admission, lease_s)
return {'admitted', '0'}
"""

# Settle a request: release its admission once, from its terminal result.
#   KEYS[1]  its admission record (see `_ADMIT`)
#   ARGV[1]  the request id
#   ARGV[2]  the tokens it really used (-1: not known; the estimate stands)
#   ARGV[3]  its cost in nano-USD, added to the month's spend of each scope
#   ARGV[4]  the month, `YYYYMM`
# For each scope charged: frees its concurrency slot, gives back (or takes) the difference
# between the estimate and the real usage in the `tpm` bucket, adds the cost to the spend.
# Returns 1, or 0 when there was nothing to settle (settled already, or never admitted).
_SETTLE = """
local admission, id = KEYS[1], ARGV[1]
local actual, nano, month = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local adm = redis.call('HMGET', admission, 'est', 'scopes')
if not adm[2] then return 0 end
local est = tonumber(adm[1])
for prefix in string.gmatch(adm[2], '%S+') do
  redis.call('ZREM', prefix .. ':conc', id)
  local tpm = prefix .. ':tpm'
  local v = tonumber(redis.call('HGET', tpm, 'v'))
  if actual >= 0 and actual ~= est and v then
    redis.call('HSET', tpm, 'v', v + est - actual)
  end
  if nano > 0 then
    local spend = prefix .. ':spend:' .. month
    redis.call('INCRBY', spend, nano)
    redis.call('EXPIRE', spend, 3024000)
  end
end
redis.call('DEL', admission)
return 1
"""


NANO = Decimal(1_000_000_000)


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
            budget = limits.budget_usd_month
            args += [_limit(limits.rpm), _limit(limits.tpm), _limit(limits.concurrency)]
            args.append(_limit(None if budget is None else to_nano(budget)))
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


def _limit(limit: int | None) -> int:
    """A limit as the admission script reads it: UNLIMITED when there is none."""
    return UNLIMITED if limit is None else limit
