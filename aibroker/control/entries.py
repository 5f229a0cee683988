"""The config topic's records: one per object, keyed by it, each the object's whole state.

| key | value |
|---|---|
| `tenant:<name>` | `{"v": 1, "tenant": {…}}`, or `{"v": 1, "deleted": true}` |
| `key:<key id>` | `{"v": 1, "key_id", "digest", "tenant", "fields": {…}}` (never the key) |
| `revoked:<key id>` | `{"v": 1, "key_id", "digest", "tenant", "revoked_at"}` |

A deletion is a record of its own, not a Kafka tombstone (a null value), because compaction
drops tombstones after `delete.retention.ms`: a view restored from an older copy and replayed
from its offset would miss the deletion. A revocation is its own object, so no later write of
the key's record (a rotation that read the record before the revocation) can bring it back.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, ValidationError

from aibroker.stores.control_view import Change, KeyChange, Revocation, Skip, TenantChange
from aibroker.stores.tenants import Tenant

log = logging.getLogger(__name__)

VERSION = 1


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: int = VERSION


class TenantEntry(_Entry):
    tenant: Tenant | None = None
    deleted: bool = False


class KeyEntry(_Entry):
    key_id: str
    digest: str
    tenant: str | None
    fields: dict[str, str]


class RevokedEntry(_Entry):
    key_id: str
    digest: str
    tenant: str | None
    revoked_at: float


def encode(change: Change) -> tuple[bytes, bytes]:
    """The record's key and value."""
    if isinstance(change, TenantChange):
        if change.document is None:
            entry: _Entry = TenantEntry(deleted=True)
        else:
            entry = TenantEntry(tenant=Tenant.model_validate_json(change.document))
        return f"tenant:{change.name}".encode(), entry.model_dump_json(exclude_none=True).encode()
    if isinstance(change, KeyChange):
        entry = KeyEntry(
            key_id=change.key_id, digest=change.digest, tenant=change.tenant, fields=change.fields
        )
        return f"key:{change.key_id}".encode(), entry.model_dump_json().encode()
    if isinstance(change, Revocation):
        entry = RevokedEntry(
            key_id=change.key_id,
            digest=change.digest,
            tenant=change.tenant,
            revoked_at=change.revoked_at,
        )
        return f"revoked:{change.key_id}".encode(), entry.model_dump_json().encode()
    raise TypeError(f"nothing to write for {change!r}")


def decode(key: bytes | None, value: bytes | None) -> Change:
    """The change a record makes to the view; `Skip` for one it cannot use (logged)."""
    kind, _, name = (key or b"").decode(errors="replace").partition(":")
    try:
        if kind == "tenant" and name:
            return _tenant(name, value)
        if kind == "key" and value is not None:
            k = KeyEntry.model_validate_json(value)
            if k.v <= VERSION:
                return KeyChange(k.key_id, k.digest, k.tenant, k.fields)
        elif kind == "revoked" and value is not None:
            r = RevokedEntry.model_validate_json(value)
            if r.v <= VERSION:
                return Revocation(r.key_id, r.digest, r.tenant, r.revoked_at)
    except ValidationError as exc:
        log.warning("config record %r unreadable (%s); skipped", key, exc.errors()[:1])
        return Skip()
    log.warning("config record %r not for this release; skipped", key)
    return Skip()


def _tenant(name: str, value: bytes | None) -> Change:
    if value is None:  # a tombstone written by hand: the tenant is gone
        return TenantChange(name, None)
    entry = TenantEntry.model_validate_json(value)
    if entry.v > VERSION:
        log.warning("config record for tenant %s not for this release; skipped", name)
        return Skip()
    if entry.deleted:
        return TenantChange(name, None)
    if entry.tenant is None:
        log.warning("config record for tenant %s has no tenant; skipped", name)
        return Skip()
    return TenantChange(name, entry.tenant.model_dump_json())
