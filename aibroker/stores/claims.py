"""Claim-before-work: one consumer at a time works on an attempt of a request; finished
attempts stay marked so a redelivery skips them.

`aib:claim:{<id>}:<attempt>` holds the owner while work runs (a lease, renewed) and `done`
afterwards. A retry is a new attempt, so it is never mistaken for a duplicate.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from aibroker.stores.keyspace import request_key
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import cancel_key


class Claim(StrEnum):
    """What acquiring a claim found."""

    ACQUIRED = "acquired"
    """This owner holds it now: do the work."""
    DONE = "done"
    """The work was finished and its output produced: skip it."""
    BUSY = "busy"
    """Another owner's lease is live: wait for it to finish or lapse."""
    CANCELLED = "cancelled"
    """The client cancelled the request: do not start it."""


# Claim an attempt of a request, and mark the request running.
#   KEYS[1]  the claim, `aib:claim:{<id>}:<attempt>` (its owner, or `done`)
#   KEYS[2]  the request's state, `aib:req:{<id>}`   KEYS[3]  its cancel flag
#   ARGV[1]  the owner   ARGV[2]  the lease (ms)   ARGV[3]  the tenant
#   ARGV[4]  how long the state lasts (s)
# Returns a `Claim`: 'acquired', 'done', 'busy' or 'cancelled'.
_ACQUIRE = """
local claim, state, flag = KEYS[1], KEYS[2], KEYS[3]
local owner, lease_ms, tenant, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', flag) == 1 then return 'cancelled' end
local v = redis.call('GET', claim)
if not v or v == owner then
  redis.call('SET', claim, owner, 'PX', lease_ms)
  local s = redis.call('HGET', state, 'status')
  if s ~= 'succeeded' and s ~= 'failed' and s ~= 'cancelled' and s ~= 'expired' then
    redis.call('HSET', state, 'status', 'running', 'tenant', tenant)
    redis.call('EXPIRE', state, ttl)
  end
  return 'acquired'
end
if v == 'done' then return 'done' end
return 'busy'
"""

# Extend a claim's lease, if the owner still holds it.
#   KEYS[1]  the claim   ARGV[1]  the owner   ARGV[2]  the lease (ms)
# Returns 1 when renewed, 0 when the owner lost it.
_RENEW = """
local claim, owner, lease_ms = KEYS[1], ARGV[1], ARGV[2]
if redis.call('GET', claim) == owner then
  return redis.call('PEXPIRE', claim, lease_ms)
end
return 0
"""

# Let a claim go, if the owner still holds it.
#   KEYS[1]  the claim   ARGV[1]  the owner
# Returns 1 when released, else 0.
_RELEASE = """
local claim, owner = KEYS[1], ARGV[1]
if redis.call('GET', claim) == owner then return redis.call('DEL', claim) end
return 0
"""


class ClaimStore(Protocol):
    """Who works on an attempt of a request, and which attempts are done."""

    async def acquire(self, request_id: str, attempt: int, owner: str, tenant: str) -> Claim:
        """Claim the attempt; on success the request's state also becomes `running` (one
        round trip), unless it has already ended. A cancelled request is never claimed."""
        ...

    async def renew(self, request_id: str, attempt: int, owner: str) -> bool: ...

    async def release(self, request_id: str, attempt: int, owner: str) -> None: ...

    async def mark_done(self, request_id: str, attempt: int) -> None: ...


class RedisClaimStore:
    def __init__(self, redis: RedisClient, *, lease_s: float, done_ttl_s: int) -> None:
        self._redis = redis
        self._lease_ms = int(lease_s * 1000)
        self._done_ttl_s = done_ttl_s
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, request_id: str, attempt: int, owner: str, tenant: str) -> Claim:
        """Claim the attempt; on success the request's state also becomes `running` (one
        round trip), unless it has already ended. A cancelled request is never claimed."""
        found = await self._acquire(
            keys=[
                _key(request_id, attempt),
                request_key("req", request_id),
                cancel_key(request_id),
            ],
            args=[owner, self._lease_ms, tenant, self._done_ttl_s],
        )
        return Claim(found)

    async def renew(self, request_id: str, attempt: int, owner: str) -> bool:
        keys = [_key(request_id, attempt)]
        return bool(await self._renew(keys=keys, args=[owner, self._lease_ms]))

    async def release(self, request_id: str, attempt: int, owner: str) -> None:
        await self._release(keys=[_key(request_id, attempt)], args=[owner])

    async def mark_done(self, request_id: str, attempt: int) -> None:
        await self._redis.set(_key(request_id, attempt), "done", ex=self._done_ttl_s)


def _key(request_id: str, attempt: int) -> str:
    return f"{request_key('claim', request_id)}:{attempt}"
