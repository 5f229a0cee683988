"""API keys: `aib_` + random, stored only as SHA-256, shown once; listed and revoked by id."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from aibroker.ids import new_id
from aibroker.limits import Limits
from aibroker.stores.cache import TtlCache

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


@dataclass(frozen=True)
class KeyRecord:
    """What the admin API shows of a key: never the key, only its visible prefix."""

    key_id: str
    tenant: str
    prefix: str
    created_at: float
    revoked_at: float | None
    limits: Limits


class KeyStore(Protocol):
    """API keys by their SHA-256, and their records by id."""

    async def add(
        self, tenant: str, key: str | None = None, *, limits: Limits | None = None
    ) -> tuple[str, KeyInfo]:
        """Store a key (a new random one unless given); returns the plaintext and its record.
        Adding a key that exists already returns its record (so a fixed dev key is stable)."""
        ...

    async def add_hashed(
        self, tenant: str, digest: str, prefix: str, limits: Limits | None = None
    ) -> KeyInfo:
        """Store a key known only by its SHA-256 (as the tenants file gives it)."""
        ...

    async def lookup(self, key: str) -> KeyInfo | None: ...

    async def lookup_hashed(self, digest: str) -> KeyInfo | None: ...

    async def record(self, key_id: str) -> KeyRecord | None: ...

    async def list(self, tenant: str) -> list[KeyRecord]: ...

    async def revoke(self, key_id: str) -> KeyRecord | None:
        """The key stops authenticating (within the ingress cache's TTL); its record stays."""
        ...


class RedisKeyStore:
    """`aib:key:{sha256}` → the key's tenant (the lookup); `aib:keyid:{id}` → its record;
    `aib:tenant:{tenant}:keys` → the tenant's key ids."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def add(
        self, tenant: str, key: str | None = None, *, limits: Limits | None = None
    ) -> tuple[str, KeyInfo]:
        """Store a key (a new random one unless given); returns the plaintext and its record.
        Adding a key that exists already returns its record (so a fixed dev key is stable)."""
        plaintext = key or generate_key()
        if not plaintext.startswith(KEY_PREFIX):
            raise ValueError(f"API keys start with {KEY_PREFIX!r}")
        info = await self.add_hashed(tenant, hash_key(plaintext), plaintext[:10], limits)
        return plaintext, info

    async def add_hashed(
        self, tenant: str, digest: str, prefix: str, limits: Limits | None = None
    ) -> KeyInfo:
        """Store a key known only by its SHA-256 (as the tenants file gives it)."""
        existing = await self.lookup_hashed(digest)
        if existing is not None:
            if existing.tenant != tenant:
                raise ValueError("this key already belongs to another tenant")
            if limits is not None:
                await self._redis.hset(
                    f"aib:keyid:{existing.key_id}", "limits", limits.model_dump_json()
                )
            return existing
        info = KeyInfo(tenant=tenant, key_id=new_id("key"), prefix=prefix)
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(
                f"aib:key:{digest}",
                mapping={"tenant": tenant, "key_id": info.key_id, "prefix": info.prefix},
            )
            tx.hset(
                f"aib:keyid:{info.key_id}",
                mapping={
                    "hash": digest,
                    "tenant": tenant,
                    "prefix": info.prefix,
                    "created_at": time.time(),
                    "limits": (limits or Limits()).model_dump_json(),
                },
            )
            tx.sadd(f"aib:tenant:{tenant}:keys", info.key_id)
            await tx.execute()
        return info

    async def lookup(self, key: str) -> KeyInfo | None:
        return await self.lookup_hashed(hash_key(key))

    async def lookup_hashed(self, digest: str) -> KeyInfo | None:
        found = await self._redis.hgetall(f"aib:key:{digest}")
        if not found:
            return None
        return KeyInfo(
            tenant=str(found["tenant"]), key_id=str(found["key_id"]), prefix=str(found["prefix"])
        )

    async def record(self, key_id: str) -> KeyRecord | None:
        found = await self._redis.hgetall(f"aib:keyid:{key_id}")
        if not found:
            return None
        revoked = found.get("revoked_at")
        return KeyRecord(
            key_id=key_id,
            tenant=str(found["tenant"]),
            prefix=str(found["prefix"]),
            created_at=float(found["created_at"]),
            revoked_at=float(revoked) if revoked else None,
            limits=Limits.model_validate_json(found.get("limits") or "{}"),
        )

    async def list(self, tenant: str) -> list[KeyRecord]:
        ids = sorted(await self._redis.smembers(f"aib:tenant:{tenant}:keys"))
        records = [await self.record(str(key_id)) for key_id in ids]
        return [r for r in records if r is not None]

    async def revoke(self, key_id: str) -> KeyRecord | None:
        """The key stops authenticating (within the ingress cache's TTL); its record stays."""
        found = await self._redis.hgetall(f"aib:keyid:{key_id}")
        if not found:
            return None
        async with self._redis.pipeline(transaction=True) as tx:
            tx.delete(f"aib:key:{found['hash']!s}")
            tx.hsetnx(f"aib:keyid:{key_id}", "revoked_at", time.time())
            await tx.execute()
        return await self.record(key_id)


class CachedKeys:
    """Lookups through an in-process cache (short TTL, so revocation lands within seconds;
    while Redis is unreachable, keys seen before keep working: ingress keeps accepting)."""

    def __init__(self, store: KeyStore, ttl_s: float) -> None:
        self._store = store
        self._cache: TtlCache[KeyInfo | None] = TtlCache(store.lookup_hashed, ttl_s)

    async def lookup(self, key: str) -> KeyInfo | None:
        return await self._cache.get(hash_key(key))
