"""API keys: `aib_` + random, stored only as SHA-256 under `aib:key:{hash}`, shown once."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from aibroker.ids import new_id

KEY_PREFIX = "aib_"


@dataclass(frozen=True)
class KeyInfo:
    tenant: str
    key_id: str
    prefix: str


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def add(self, tenant: str, key: str | None = None) -> tuple[str, KeyInfo]:
        """Store a key (a new random one unless given); returns the plaintext and its record."""
        plaintext = key or generate_key()
        if not plaintext.startswith(KEY_PREFIX):
            raise ValueError(f"API keys start with {KEY_PREFIX!r}")
        info = KeyInfo(tenant=tenant, key_id=new_id("key"), prefix=plaintext[:10])
        await self._redis.hset(
            f"aib:key:{hash_key(plaintext)}",
            mapping={"tenant": tenant, "key_id": info.key_id, "prefix": info.prefix},
        )
        return plaintext, info

    async def lookup(self, key: str) -> KeyInfo | None:
        found = await self._redis.hgetall(f"aib:key:{hash_key(key)}")
        if not found:
            return None
        return KeyInfo(
            tenant=str(found["tenant"]), key_id=str(found["key_id"]), prefix=str(found["prefix"])
        )


class CachedKeys:
    """Lookups through an in-process cache (short TTL, so revocation lands within seconds).

    Concurrent lookups of one key share a single Redis call. While Redis is unreachable,
    keys seen before keep working: ingress keeps accepting work.
    """

    def __init__(self, store: KeyStore, ttl_s: float) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, KeyInfo | None]] = {}
        self._pending: dict[str, asyncio.Future[KeyInfo | None]] = {}

    async def lookup(self, key: str) -> KeyInfo | None:
        digest = hash_key(key)
        cached = self._cache.get(digest)
        if cached and time.monotonic() - cached[0] < self._ttl_s:
            return cached[1]
        pending = self._pending.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._refresh(key, digest, cached))
            self._pending[digest] = pending
            pending.add_done_callback(lambda _: self._pending.pop(digest, None))
        return await asyncio.shield(pending)

    async def _refresh(
        self, key: str, digest: str, cached: tuple[float, KeyInfo | None] | None
    ) -> KeyInfo | None:
        try:
            info = await self._store.lookup(key)
        except RedisError:
            if cached:
                return cached[1]
            raise
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic(), info)
        return info
