"""`aibroker redis-retag`: move keys written before the hash tags (`keyspace.py`) to their new
names, once, on the one Redis an older release used. Run it with the stack stopped, before
starting the new release; a second run finds nothing to move.

What moves: a request's state, result, cancel flag and claims (results stay readable for their
TTL), a batch's lines, ids and fed count (a running batch goes on), and quota: buckets, the
month's spend and its announced budget thresholds, admission records (a request admitted before
is still settled once). A key's quota moves into its tenant's slot, so the tenant comes from the
key's record, and an admission's from its request's state. What does not move, and why:
circuit-breaker state (seconds long; a breaker starts closed) and usage's "counted" marks (a
replay of the usage topic across the upgrade would count its events again; the usage consumer
resumes from its committed offset, so only what was in flight is replayed).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aibroker.stores.keyspace import quota_scope, request_key, same_slot_as
from aibroker.stores.redis import RedisClient

_REQUEST = re.compile(r"aib:(req|res|cancel):(?P<id>[^{}:]+)")
_CLAIM = re.compile(r"aib:claim:(?P<id>[^{}:]+):(?P<attempt>\d+)")
_BATCH_PART = re.compile(r"aib:batch:(?P<id>[^{}:]+):(?P<part>lines|ids|expanded)")
_TENANT_QUOTA = re.compile(r"aib:q:t:(?P<tenant>[^{}:]+):(?P<rest>.+)")
_KEY_QUOTA = re.compile(r"aib:q:k:(?P<key_id>[^{}:]+):(?P<rest>.+)")
_ADMISSION = re.compile(r"aib:q:adm:(?P<id>[^{}:]+)")


@dataclass(frozen=True)
class Owner:
    """What a key's new name needs and its old name lacks: the tenant of a key id or of a
    request id (None when unknown)."""

    of_key: Callable[[str], Awaitable[str | None]]
    of_request: Callable[[str], Awaitable[str | None]]


async def new_name(key: str, owner: Owner) -> str | None:
    """The key's name under the hash tags; None when it keeps its name, or its owner is gone."""
    if m := _REQUEST.fullmatch(key):
        return request_key(m[1], m["id"])
    if m := _CLAIM.fullmatch(key):
        return f"{request_key('claim', m['id'])}:{m['attempt']}"
    if m := _BATCH_PART.fullmatch(key):
        batch = f"aib:batch:{m['id']}"
        return f"{same_slot_as(batch)}:{m['part']}"
    if m := _TENANT_QUOTA.fullmatch(key):
        return f"aib:q:{quota_scope(m['tenant'])}:{m['rest']}"
    if m := _KEY_QUOTA.fullmatch(key):
        tenant = await owner.of_key(m["key_id"])
        return None if tenant is None else f"aib:q:{quota_scope(tenant, m['key_id'])}:{m['rest']}"
    if m := _ADMISSION.fullmatch(key):
        tenant = await owner.of_request(m["id"])
        return None if tenant is None else f"aib:q:{quota_scope(tenant)}:adm:{m['id']}"
    return None


async def retag(redis: RedisClient) -> tuple[int, int]:
    """Rename every old-style key (RENAMENX: a key the new release already wrote wins); how
    many were moved and how many were left (their owner gone, or already written anew)."""
    owner = Owner(
        _tenant_field(redis, lambda key_id: [f"aib:keyid:{key_id}"]),
        # the request's state may have moved already: SCAN's order is the hash table's
        _tenant_field(redis, lambda rid: [f"aib:req:{rid}", request_key("req", rid)]),
    )
    moved = left = 0
    async for key in redis.scan_iter(match="aib:*", count=1000):
        name = await new_name(str(key), owner)
        if name is None:
            continue
        old_state = await _adm_scopes(redis, str(key), name)
        if await redis.renamenx(key, name):
            moved += 1
            if old_state is not None:
                await redis.hset(name, "scopes", old_state)
        else:
            left += 1
    return moved, left


def _tenant_field(
    redis: RedisClient, names: Callable[[str], list[str]]
) -> Callable[[str], Awaitable[str | None]]:
    """The `tenant` field of the first of `names(id)` that has one."""

    async def tenant(of: str) -> str | None:
        for name in names(of):
            if found := await redis.hget(name, "tenant"):
                return str(found)
        return None

    return tenant


async def _adm_scopes(redis: RedisClient, key: str, name: str) -> str | None:
    """An admission record names the scope prefixes it charged: renamed with it (old quota keys
    move to the tenant's slot, so `settle` must find them there)."""
    if not _ADMISSION.fullmatch(key):
        return None
    scopes = await redis.hget(key, "scopes")
    if not scopes:
        return None
    tenant = name.split("{t:", 1)[1].split("}", 1)[0]
    return " ".join(_new_prefix(str(prefix), tenant) for prefix in str(scopes).split())


def _new_prefix(prefix: str, tenant: str) -> str:
    """`aib:q:t:acme` → `aib:q:{t:acme}`; `aib:q:k:key_1` → `aib:q:{t:acme}:k:key_1`."""
    if prefix.startswith("aib:q:t:"):
        return f"aib:q:{quota_scope(prefix.removeprefix('aib:q:t:'))}"
    if prefix.startswith("aib:q:k:"):
        return f"aib:q:{quota_scope(tenant, prefix.removeprefix('aib:q:k:'))}"
    return prefix
