"""Request state and results in Redis (`aib:req:{<id>}`, `aib:res:{<id>}`), and completion notices.

Redis is a cache of Kafka: the `results` topic is the record, this is the fast read path.
The first terminal result stored for an id wins; later ones are dropped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from aibroker.stores.keyspace import request_key
from aibroker.stores.redis import RedisClient
from schemas.envelopes import Result, Status

DONE_CHANNEL = "aib:done"
"""Pub/sub channel carrying the id of each request that reached a terminal state."""
CANCEL_CHANNEL = "aib:cancel"
"""Pub/sub channel carrying the id of each request a client cancelled (pools abort it)."""

CANCEL_CHUNK = 500
"""Cancels sent at once by `cancel_all` (auto-pipelined, one round trip each; on a cluster,
each request's keys are in its own slot, so one script cannot flag them all)."""

_ADVANCE = """
local s = redis.call('HGET', KEYS[1], 'status')
if s == 'succeeded' or s == 'failed' or s == 'cancelled' or s == 'expired' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'tenant', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

_CANCEL = """
local s = redis.call('HGET', KEYS[1], 'status')
if s == 'succeeded' or s == 'failed' or s == 'cancelled' or s == 'expired' then return 0 end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""

_FINISH = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[4]) then
  redis.call('HSET', KEYS[2], 'status', ARGV[2], 'tenant', ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  redis.call('PUBLISH', ARGV[5], ARGV[6])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class RequestState:
    id: str
    tenant: str
    status: Status
    result: Result | None


class RequestStore(Protocol):
    """Request states and terminal results (the first for an id wins), and cancel flags."""

    async def advance(self, request_id: str, tenant: str, status: Status) -> bool:
        """Move a request to a non-terminal status, unless it has already ended."""
        ...

    async def request_cancel(self, request_id: str) -> bool:
        """Flag a request that has not ended as cancelled (pools check the flag when they
        claim it, and abort it if it is running); False when it has already ended."""
        ...

    async def cancel_all(self, request_ids: list[str]) -> None:
        """`request_cancel` for many requests at once (a cancelled or expired batch's lines,
        those not yet fed included: the flag waits for them)."""
        ...

    async def finish(self, result: Result) -> bool:
        """Store a terminal result; True if it was the first for this id."""
        ...

    async def get(self, request_id: str) -> RequestState | None: ...


class RedisRequestStore:
    def __init__(self, redis: RedisClient, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._advance = redis.register_script(_ADVANCE)
        self._finish = redis.register_script(_FINISH)
        self._cancel = redis.register_script(_CANCEL)

    async def advance(self, request_id: str, tenant: str, status: Status) -> bool:
        """Move a request to a non-terminal status, unless it has already ended."""
        done = await self._advance(
            keys=[_req(request_id)], args=[status.value, tenant, self._ttl_s]
        )
        return bool(done)

    async def request_cancel(self, request_id: str) -> bool:
        """Flag a request that has not ended as cancelled (pools check the flag when they
        claim it, and abort it if it is running); False when it has already ended."""
        flagged = await self._cancel(
            keys=[_req(request_id), cancel_key(request_id)],
            args=[self._ttl_s, CANCEL_CHANNEL, request_id],
        )
        return bool(flagged)

    async def cancel_all(self, request_ids: list[str]) -> None:
        """`request_cancel` for many requests at once (a cancelled or expired batch's lines,
        those not yet fed included: the flag waits for them)."""
        for start in range(0, len(request_ids), CANCEL_CHUNK):  # a batch may have 50,000 lines
            chunk = request_ids[start : start + CANCEL_CHUNK]
            await asyncio.gather(*(self.request_cancel(request_id) for request_id in chunk))

    async def finish(self, result: Result) -> bool:
        """Store a terminal result; True if it was the first for this id."""
        stored = await self._finish(
            keys=[_res(result.id), _req(result.id)],
            args=[
                result.model_dump_json(exclude_none=True),
                result.status.value,
                result.tenant,
                self._ttl_s,
                DONE_CHANNEL,
                result.id,
            ],
        )
        return bool(stored)

    async def get(self, request_id: str) -> RequestState | None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(_req(request_id))
            pipe.get(_res(request_id))
            state, raw = await pipe.execute()
        if not state:
            return None
        result = Result.model_validate_json(raw) if raw else None
        status = result.status if result else Status(state["status"])
        return RequestState(request_id, state["tenant"], status, result)


def _req(request_id: str) -> str:
    return request_key("req", request_id)


def _res(request_id: str) -> str:
    return request_key("res", request_id)


def cancel_key(request_id: str) -> str:
    return request_key("cancel", request_id)
