"""API keys: `aib_` + random, stored only as SHA-256, shown once; listed, rotated and revoked
by id. A key has a name, an environment, an optional expiry, an optional model allow-list
narrower than its tenant's, its own limits, and, for the admin API, roles."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from aibroker.identity import Role
from aibroker.ids import new_id
from aibroker.limits import Limits
from aibroker.stores.cache import TtlCache
from aibroker.stores.control_view import (
    ControlView,
    KeyChange,
    Revocation,
    lookup_key,
    owned_key,
    record_key,
)
from aibroker.stores.redis import RedisClient

KEY_PREFIX = "aib_"
ENVIRONMENT = r"^[a-z0-9_-]{1,32}$"


class KeySpec(BaseModel):
    """What a key is given at creation (and keeps when it is rotated)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=128, description="A label for people.")
    environment: str = Field(default="live", pattern=ENVIRONMENT, description="e.g. live, test.")
    expires_at: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Unix time after which it no longer authenticates.",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Models it may use (names or `*` patterns) within its tenant's; empty: all.",
    )
    limits: Limits = Field(default_factory=Limits)
    roles: list[Role] = Field(default_factory=list, description="Admin API roles; none: API only.")


@dataclass(frozen=True)
class KeyInfo:
    """What a lookup by the key's hash gives: enough to decide, without another read."""

    tenant: str | None
    key_id: str
    prefix: str
    environment: str = "live"
    expires_at: float | None = None
    models: tuple[str, ...] = ()
    roles: frozenset[Role] = frozenset()

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class KeyRevoked(ValueError):
    """A key that was revoked is added again (the tenants file still lists it)."""


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def visible_prefix(key: str) -> str:
    """What may be shown of a key (the admin API, the audit log): `aib_` and 6 characters."""
    return key[:10]


@dataclass(frozen=True)
class KeyRecord:
    """What the admin API shows of a key: never the key, only its visible prefix."""

    key_id: str
    tenant: str | None
    prefix: str
    name: str
    environment: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    models: list[str]
    roles: list[Role]
    limits: Limits
    rotated_from: str | None
    replaced_by: str | None

    def spec(self) -> KeySpec:
        return KeySpec(
            name=self.name,
            environment=self.environment,
            expires_at=self.expires_at,
            models=self.models,
            limits=self.limits,
            roles=self.roles,
        )


class KeyStore(Protocol):
    """API keys by their SHA-256, and their records by id."""

    async def add(
        self, tenant: str | None, key: str | None = None, spec: KeySpec | None = None
    ) -> tuple[str, KeyInfo]:
        """Store a key (a new random one unless given); returns the plaintext and its record.
        Adding a key that exists already returns its record (so a fixed dev key is stable)."""
        ...

    async def add_hashed(
        self, tenant: str | None, digest: str, prefix: str, spec: KeySpec | None = None
    ) -> KeyInfo:
        """Store a key known only by its SHA-256 (as the tenants file gives it)."""
        ...

    async def lookup(self, key: str) -> KeyInfo | None: ...

    async def lookup_hashed(self, digest: str) -> KeyInfo | None: ...

    async def record(self, key_id: str) -> KeyRecord | None: ...

    async def list(self, tenant: str | None) -> list[KeyRecord]:
        """A tenant's keys (None: the admin keys that belong to no tenant)."""
        ...

    async def revoke(self, key_id: str) -> KeyRecord | None:
        """The key stops authenticating (within the ingress cache's TTL); its record stays."""
        ...

    async def rotate(self, key_id: str, grace_s: float, now: float) -> tuple[str, KeyRecord]:
        """A new key like `key_id`; the old one expires `grace_s` from `now` (or sooner, if
        it already would). Returns the new plaintext and record."""
        ...

    async def revoke_all(self, tenant: str) -> int:
        """Revoke every key of a tenant (it was deleted); how many were live."""
        ...


class RedisKeyStore:
    """The keys of the control plane's view (`control_view.py`): `…:key:{sha256}` → the key's
    `KeyInfo` (the lookup; a revoked key's holds only `revoked_at`); `…:keyid:{id}` → its
    record; `…:keys:{tenant}` (`…:admin-keys` for keys of no tenant) → key ids. Writes take
    effect through the view's commit: at once, or through the config topic."""

    def __init__(self, redis: RedisClient, view: ControlView | None = None) -> None:
        self._redis = redis
        self._view = view or ControlView(redis)

    async def add(
        self, tenant: str | None, key: str | None = None, spec: KeySpec | None = None
    ) -> tuple[str, KeyInfo]:
        plaintext = key or generate_key()
        if not plaintext.startswith(KEY_PREFIX):
            raise ValueError(f"API keys start with {KEY_PREFIX!r}")
        info = await self.add_hashed(tenant, hash_key(plaintext), visible_prefix(plaintext), spec)
        return plaintext, info

    async def add_hashed(
        self, tenant: str | None, digest: str, prefix: str, spec: KeySpec | None = None
    ) -> KeyInfo:
        if await self._redis.hexists(lookup_key(digest), "revoked_at"):
            raise KeyRevoked("this key was revoked: it is never added again; make a new one")
        existing = await self.lookup_hashed(digest)
        if existing is not None:
            if existing.tenant != tenant:
                raise ValueError("this key already belongs to another tenant")
            if spec is not None:  # the tenants file wins: its limits and lifecycle apply
                return await self._write(existing.key_id, digest, tenant, prefix, spec, {})
            return existing
        key_id = new_id("key")
        return await self._write(key_id, digest, tenant, prefix, spec or KeySpec(), {})

    async def _write(
        self,
        key_id: str,
        digest: str,
        tenant: str | None,
        prefix: str,
        spec: KeySpec,
        extra: dict[str, str],
    ) -> KeyInfo:
        """Create or replace the record (what it had besides the spec kept); nothing is
        written when nothing changes (a replica seeding the same file again)."""
        info = KeyInfo(
            tenant=tenant,
            key_id=key_id,
            prefix=prefix,
            environment=spec.environment,
            expires_at=spec.expires_at,
            models=tuple(spec.models),
            roles=frozenset(spec.roles),
        )
        current = {
            str(k): str(v) for k, v in (await self._redis.hgetall(record_key(key_id))).items()
        }
        current.pop("revoked_at", None)  # a revocation is a change of its own
        fields = {"created_at": repr(time.time()), **current}
        fields |= {
            "tenant": tenant or "",
            "key_id": key_id,
            "prefix": prefix,
            "environment": spec.environment,
            "expires_at": "" if spec.expires_at is None else repr(spec.expires_at),
            "models": json.dumps(spec.models),
            "roles": ",".join(spec.roles),
            "hash": digest,
            "name": spec.name,
            "limits": spec.limits.model_dump_json(),
            **extra,
        }
        if fields != current:
            await self._view.commit([KeyChange(key_id, digest, tenant, fields)])
        return info

    async def lookup(self, key: str) -> KeyInfo | None:
        return await self.lookup_hashed(hash_key(key))

    async def lookup_hashed(self, digest: str) -> KeyInfo | None:
        found = await self._view.read(self._redis.hgetall(lookup_key(digest)))
        if "key_id" not in found:  # none, or revoked
            return None
        expires = str(found.get("expires_at") or "")
        return KeyInfo(
            tenant=str(found["tenant"]) or None,
            key_id=str(found["key_id"]),
            prefix=str(found["prefix"]),
            environment=str(found.get("environment") or "live"),
            expires_at=float(expires) if expires else None,
            models=tuple(json.loads(found.get("models") or "[]")),
            roles=frozenset(Role(r) for r in str(found.get("roles") or "").split(",") if r),
        )

    async def record(self, key_id: str) -> KeyRecord | None:
        found = await self._view.read(self._redis.hgetall(record_key(key_id)))
        if "key_id" not in found:  # none, or only a revocation replayed before its record
            return None

        def number(name: str) -> float | None:
            value = found.get(name)
            return float(value) if value else None

        return KeyRecord(
            key_id=key_id,
            tenant=str(found["tenant"]) or None,
            prefix=str(found["prefix"]),
            name=str(found.get("name") or ""),
            environment=str(found.get("environment") or "live"),
            created_at=float(found["created_at"]),
            expires_at=number("expires_at"),
            revoked_at=number("revoked_at"),
            models=list(json.loads(found.get("models") or "[]")),
            roles=[Role(r) for r in str(found.get("roles") or "").split(",") if r],
            limits=Limits.model_validate_json(found.get("limits") or "{}"),
            rotated_from=str(found.get("rotated_from") or "") or None,
            replaced_by=str(found.get("replaced_by") or "") or None,
        )

    async def list(self, tenant: str | None) -> list[KeyRecord]:
        ids = sorted(await self._redis.smembers(owned_key(tenant)))
        records = [await self.record(str(key_id)) for key_id in ids]
        return [r for r in records if r is not None]

    async def revoke(self, key_id: str) -> KeyRecord | None:
        found = await self._redis.hgetall(record_key(key_id))
        if "key_id" not in found:
            return None
        if not found.get("revoked_at"):
            tenant = str(found["tenant"]) or None
            change = Revocation(key_id, str(found["hash"]), tenant, time.time())
            await self._view.commit([change])
        return await self.record(key_id)

    async def rotate(self, key_id: str, grace_s: float, now: float) -> tuple[str, KeyRecord]:
        old = await self.record(key_id)
        if old is None:
            raise KeyError(key_id)
        plaintext = generate_key()
        spec = old.spec()
        new = await self._write(
            new_id("key"),
            hash_key(plaintext),
            old.tenant,
            visible_prefix(plaintext),
            spec,
            {"rotated_from": key_id},
        )
        ends = now + grace_s
        shorter = old.revoked_at is None and (old.expires_at is None or ends < old.expires_at)
        spec = spec.model_copy(update={"expires_at": ends}) if shorter else spec
        digest = str(await self._redis.hget(record_key(key_id), "hash"))
        await self._write(key_id, digest, old.tenant, old.prefix, spec, {"replaced_by": new.key_id})
        record = await self.record(new.key_id)
        assert record is not None
        return plaintext, record

    async def revoke_all(self, tenant: str) -> int:
        """Revoke every key of a tenant (it was deleted); how many were live."""
        revoked = 0
        for record in await self.list(tenant):
            if record.revoked_at is None:
                await self.revoke(record.key_id)
                revoked += 1
        return revoked


async def limits_of_key(store: KeyStore, key_id: str) -> Limits:
    """A key's own limits (none for a key that is gone)."""
    record = await store.record(key_id)
    return record.limits if record else Limits()


class CachedKeys:
    """Lookups through an in-process cache (short TTL, so revocation lands within seconds;
    while Redis is unreachable, keys seen before keep working: ingress keeps accepting)."""

    def __init__(self, store: KeyStore, ttl_s: float) -> None:
        self._store = store
        self._cache: TtlCache[KeyInfo | None] = TtlCache(store.lookup_hashed, ttl_s)

    async def lookup(self, key: str) -> KeyInfo | None:
        return await self._cache.get(hash_key(key))
