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

# Move a request to a non-terminal status, unless it has ended.
#   KEYS[1]  its state, `aib:req:{<id>}` (a hash of `status`, `tenant`)
#   ARGV[1]  the status   ARGV[2]  the tenant   ARGV[3]  how long the state lasts (s)
# Returns 1 when it moved, 0 when it had ended.
_ADVANCE = """
local state, status, tenant, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local s = redis.call('HGET', state, 'status')
if s == 'succeeded' or s == 'failed' or s == 'cancelled' or s == 'expired' then return 0 end
redis.call('HSET', state, 'status', status, 'tenant', tenant)
redis.call('EXPIRE', state, ttl)
return 1
"""

# Flag a request that has not ended as cancelled, and say so to the pools.
#   KEYS[1]  its state, `aib:req:{<id>}`   KEYS[2]  its cancel flag, `aib:cancel:{<id>}`
#   ARGV[1]  how long the flag lasts (s)   ARGV[2]  the cancel channel   ARGV[3]  the request id
# Returns 1 when it was flagged, 0 when it had ended.
_CANCEL = """
local state, flag = KEYS[1], KEYS[2]
local ttl, channel, id = ARGV[1], ARGV[2], ARGV[3]
local s = redis.call('HGET', state, 'status')
if s == 'succeeded' or s == 'failed' or s == 'cancelled' or s == 'expired' then return 0 end
redis.call('SET', flag, '1', 'EX', ttl)
redis.call('PUBLISH', channel, id)
return 1
"""

# Store a terminal result, the first for its request only, and announce it.
#   KEYS[1]  its result, `aib:res:{<id>}`   KEYS[2]  its state, `aib:req:{<id>}`
#   ARGV[1]  the result (JSON)   ARGV[2]  its status   ARGV[3]  the tenant
#   ARGV[4]  how long result and state last (s)   ARGV[5]  the done channel   ARGV[6]  the id
# Returns 1 when this result was stored, 0 when one was stored before.
_FINISH = """
local result, state = KEYS[1], KEYS[2]
local body, status, tenant, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local channel, id = ARGV[5], ARGV[6]
if redis.call('SET', result, body, 'NX', 'EX', ttl) then
  redis.call('HSET', state, 'status', status, 'tenant', tenant)
  redis.call('EXPIRE', state, ttl)
  redis.call('PUBLISH', channel, id)
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

    async def delete(self, request_id: str) -> bool:
        """Forget a request's state and result (`DELETE /v1/responses/{id}`); False when
        there was nothing to forget."""
        ...


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

    async def delete(self, request_id: str) -> bool:
        """Forget a request's state and result (`DELETE /v1/responses/{id}`); False when
        there was nothing to forget."""
        return bool(await self._redis.delete(_req(request_id), _res(request_id)))


def _req(request_id: str) -> str:
    return request_key("req", request_id)


def _res(request_id: str) -> str:
    return request_key("res", request_id)


def cancel_key(request_id: str) -> str:
    return request_key("cancel", request_id)
