"""Idempotency-Key: one request per (tenant, key) for 24 h; a replay gets the same request.

`aib:idem:{tenant}:{sha256(key)}` holds `{request id}|{fingerprint of the body}`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from aibroker.stores.redis import RedisClient

# Bind a key to a request unless it is bound already.
#   KEYS[1]  the binding, `aib:idem:{tenant}:{sha256(key)}`
#   ARGV[1]  this request's binding, `<request id>|<fingerprint of the body>`
#   ARGV[2]  how long a binding lasts (s)
# Returns the binding the key holds now: ARGV[1], or the one made first.
_RESERVE = """
local binding, mine, ttl = KEYS[1], ARGV[1], ARGV[2]
local bound = redis.call('GET', binding)
if bound then return bound end
redis.call('SET', binding, mine, 'EX', ttl)
return mine
"""

# Undo a binding, only if it is still this request's.
#   KEYS[1]  the binding     ARGV[1]  this request's binding, as `_RESERVE` made it
# Returns 1 when it was deleted, else 0.
_FORGET = """
local binding, mine = KEYS[1], ARGV[1]
if redis.call('GET', binding) == mine then return redis.call('DEL', binding) end
return 0
"""


@dataclass(frozen=True)
class Reservation:
    request_id: str
    """The request this key stands for: the new one, or the one made first."""
    fresh: bool
    """True when this call made the binding (the caller must now submit the request)."""
    same_body: bool
    """False when the key was first used with a different body."""


def fingerprint(endpoint: str, body: dict[str, Any]) -> str:
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(endpoint.encode() + b"\0" + canonical).hexdigest()[:32]


class IdempotencyStore(Protocol):
    """Idempotency-Key to request id, per tenant, with the body's fingerprint."""

    async def reserve(self, tenant: str, key: str, request_id: str, body_print: str) -> Reservation:
        """Atomically bind the key to `request_id` unless it is bound already."""
        ...

    async def forget(self, tenant: str, key: str, request_id: str, body_print: str) -> None:
        """Undo a binding whose request could not be written (so a retry can succeed)."""
        ...


class RedisIdempotencyStore:
    def __init__(self, redis: RedisClient, ttl_s: int) -> None:
        self._ttl_s = ttl_s
        self._reserve = redis.register_script(_RESERVE)
        self._forget = redis.register_script(_FORGET)

    async def reserve(self, tenant: str, key: str, request_id: str, body_print: str) -> Reservation:
        """Atomically bind the key to `request_id` unless it is bound already."""
        mine = f"{request_id}|{body_print}"
        bound = str(await self._reserve(keys=[_key(tenant, key)], args=[mine, self._ttl_s]))
        bound_id, _, bound_print = bound.partition("|")
        return Reservation(bound_id, bound == mine, bound_print == body_print)

    async def forget(self, tenant: str, key: str, request_id: str, body_print: str) -> None:
        """Undo a binding whose request could not be written (so a retry can succeed)."""
        await self._forget(keys=[_key(tenant, key)], args=[f"{request_id}|{body_print}"])


def _key(tenant: str, key: str) -> str:
    return f"aib:idem:{tenant}:{hashlib.sha256(key.encode()).hexdigest()}"
