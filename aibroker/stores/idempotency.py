"""Idempotency-Key: one request per (tenant, key) for 24 h; a replay gets the same request.

`aib:idem:{tenant}:{sha256(key)}` holds `{request id}|{fingerprint of the body}`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from aibroker.stores.redis import RedisClient

_RESERVE = """
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""

_FORGET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
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
