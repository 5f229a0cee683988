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


_ACQUIRE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 'cancelled' end
local v = redis.call('GET', KEYS[1])
if not v or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local s = redis.call('HGET', KEYS[2], 'status')
  if s ~= 'succeeded' and s ~= 'failed' and s ~= 'cancelled' and s ~= 'expired' then
    redis.call('HSET', KEYS[2], 'status', 'running', 'tenant', ARGV[3])
    redis.call('EXPIRE', KEYS[2], ARGV[4])
  end
  return 'acquired'
end
if v == 'done' then return 'done' end
return 'busy'
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
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
