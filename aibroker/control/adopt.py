"""The first start on a Redis that an older release filled: its tenants and keys, kept under
their old names (`aib:tenant:<name>`, `aib:keyid:<id>`), are written to the config topic while
the topic is still empty, so the view built from it has them and a later loss of Redis does
not lose them. What is read is left in place (the new release no longer reads it)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from pydantic import ValidationError

from aibroker.stores.control_view import Change, KeyChange, Revocation, TenantChange
from aibroker.stores.redis import RedisClient
from aibroker.stores.tenants import Tenant

log = logging.getLogger(__name__)


async def legacy_changes(redis: RedisClient) -> list[Change]:
    """The old layout's tenants, then its keys (each record, then its revocation if any)."""
    changes: list[Change] = []
    for name in sorted(str(n) for n in await redis.smembers("aib:tenants")):
        found = await redis.get(f"aib:tenant:{name}")
        try:
            tenant = Tenant.model_validate_json(found) if found else None
        except ValidationError:
            tenant = None
        if tenant is None:
            log.warning("old tenant %s unreadable; not adopted", name)
            continue
        changes.append(TenantChange(name, tenant.model_dump_json()))
    async for key in redis.scan_iter(match="aib:keyid:*", count=1000):
        record = {str(k): str(v) for k, v in (await redis.hgetall(key)).items()}
        if not {"key_id", "hash", "tenant", "prefix"} <= set(record):
            continue
        revoked = record.pop("revoked_at", "")
        tenant_of = record["tenant"] or None
        changes.append(KeyChange(record["key_id"], record["hash"], tenant_of, record))
        if revoked:
            changes.append(Revocation(record["key_id"], record["hash"], tenant_of, float(revoked)))
    return changes


async def adopt(redis: RedisClient, append: Callable[[Sequence[Change]], Awaitable[int]]) -> int:
    """Write the old layout's tenants and keys to the (empty) config topic; how many."""
    changes = await legacy_changes(redis)
    if changes:
        await append(changes)
        log.info(
            "adopted %d tenants and keys of an older release into the config topic", len(changes)
        )
    return len(changes)
