"""The control plane's view in Redis: tenants and keys as the config topic (`aibroker/control/`)
says they are, applied one change at a time in the log's order.

Every key of the view shares the hash tag `{cp}`, so on a Redis Cluster the whole view lives in
one slot: a change and the marker that says how far the log is applied move in one script, and
whatever loses the data (a flush, a failover to a replica that had not caught up, a shard
replaced) loses the marker with it, or leaves it as far behind as the data.

Per config topic, `aib:{cp}:applied:<topic>` is the next offset the view needs and
`aib:{cp}:ready:<topic>` says the view was read to the end of the log once; both vanish with
the data. While the view is not ready a reader trusts nothing it reads there (`ViewRebuilding`,
a `RedisError`, so every caller's "Redis down" path serves it: 503 + Retry-After for what is not
cached, work retried in place): a revocation is applied before the view serves again, and it is
final in the view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from redis.exceptions import RedisError

from aibroker.stores.redis import RedisClient

VIEW = "aib:{cp}"
T = TypeVar("T")


def tenant_key(name: str) -> str:
    return f"{VIEW}:tenant:{name}"


TENANTS = f"{VIEW}:tenants"
"""Every tenant's name."""


def lookup_key(digest: str) -> str:
    """A key by its SHA-256, what authenticating reads: the key's `LOOKUP_FIELDS` while it is
    live, only `revoked_at` once it is revoked (so it is never added again)."""
    return f"{VIEW}:key:{digest}"


def record_key(key_id: str) -> str:
    """A key's record by id, kept after it is revoked."""
    return f"{VIEW}:keyid:{key_id}"


def owned_key(tenant: str | None) -> str:
    """The ids of a tenant's keys (None: the admin and viewer keys of no tenant)."""
    return f"{VIEW}:keys:{tenant}" if tenant else f"{VIEW}:admin-keys"


LOOKUP_FIELDS = ("tenant", "key_id", "prefix", "environment", "expires_at", "models", "roles")
"""The fields of a key's record that its lookup copies."""


class ViewRebuilding(RedisError):
    """The view is being rebuilt from the config topic: a miss may be data not yet replayed."""


@dataclass(frozen=True)
class TenantChange:
    name: str
    document: str | None
    """The tenant as JSON; None: deleted."""


@dataclass(frozen=True)
class KeyChange:
    key_id: str
    digest: str
    tenant: str | None
    fields: dict[str, str] = field(default_factory=dict)
    """The record (`RedisKeyStore` writes and reads it); never a revocation: that is its own."""


@dataclass(frozen=True)
class Revocation:
    key_id: str
    digest: str
    tenant: str | None
    revoked_at: float


@dataclass(frozen=True)
class Skip:
    """A record of the log the view has no use for (unreadable, or from a newer release)."""


Change = TenantChange | KeyChange | Revocation | Skip
Commit = Callable[[Sequence[Change]], Awaitable[None]]
"""How a store's writes take effect: applied to the view at once, or through the log."""


@dataclass(frozen=True)
class Applied:
    outcome: Literal["applied", "before", "behind"]
    """`behind`: the view lacks records before this one (lost, or behind this reader)."""
    marker: int | None
    """The view's next offset after the call (None: it has none, it is empty)."""


UNLOGGED = -2
"""The offset of a change that is not from the log (no guard, no marker)."""

# Apply one change to the view, in the log's order, then move the marker past it.
#   KEYS[1]  the marker, `aib:{cp}:applied:<topic>`: the next offset the view needs
#   KEYS[2]  the object: a tenant `…:tenant:<name>`, or a key's record `…:keyid:<id>`
#   KEYS[3]  its index: every tenant's name `…:tenants`, or the key's lookup `…:key:<sha256>`
#   KEYS[4]  a key's owner's key ids `…:keys:<tenant>` (for a tenant: KEYS[3] again)
#   ARGV[1]  the offset from which the applier has read every record (-1: the log's start)
#   ARGV[2]  the change's offset (-2: not from the log: no guard, the marker left alone)
#   ARGV[3]  the kind: `tenant`, `gone` (a deleted tenant), `key`, `revoked`, `skip`
#   ARGV[4]  tenant, gone: its name; key: its id; revoked: when (unix s)
#   ARGV[5]  tenant: its JSON; key: how many of the pairs after it the lookup copies
#   ARGV[6 + i]  key: the record's field/value pairs, the lookup's first
# Returns {1, marker} applied, {0, marker} applied before, {-1, marker} the view lacks
# records before it (-1 as the marker: the view is empty).
_APPLY = """
local from, offset, kind = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local applied = tonumber(redis.call('GET', KEYS[1]) or '-1')
if offset >= 0 then
  if applied > offset then return {0, applied} end
  if applied < from then return {-1, applied} end
end
if kind == 'tenant' then
  redis.call('SET', KEYS[2], ARGV[5])
  redis.call('SADD', KEYS[3], ARGV[4])
elseif kind == 'gone' then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[4])
elseif kind == 'key' then
  local revoked = redis.call('HGET', KEYS[2], 'revoked_at')  -- a revocation is final
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[2], unpack(ARGV, 6))
  if revoked then
    redis.call('HSET', KEYS[2], 'revoked_at', revoked)
    redis.call('HSET', KEYS[3], 'revoked_at', revoked)
  else
    redis.call('HSET', KEYS[3], unpack(ARGV, 6, 5 + tonumber(ARGV[5])))
  end
  redis.call('SADD', KEYS[4], ARGV[4])
elseif kind == 'revoked' then
  redis.call('HSETNX', KEYS[2], 'revoked_at', ARGV[4])
  local revoked = redis.call('HGET', KEYS[2], 'revoked_at')
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], 'revoked_at', revoked)
end
if offset < 0 then return {1, applied} end
redis.call('SET', KEYS[1], offset + 1)
return {1, offset + 1}
"""

# Mark the view ready: an applier read the log to `ARGV[1]` and the view has all of it.
#   KEYS[1]  the marker   KEYS[2]  the ready flag, `aib:{cp}:ready:<topic>`
#   ARGV[1]  the next offset the view must have reached
#   ARGV[2]  '1' when the applier read the whole log and it held nothing
# Returns {1, marker} ready, {-1, marker} the view lacks some of it (-1: it is empty).
_READY = """
local applied = tonumber(redis.call('GET', KEYS[1]) or '-1')
if applied < 0 and ARGV[2] == '1' then
  applied = tonumber(ARGV[1])
  redis.call('SET', KEYS[1], applied)
end
if applied < tonumber(ARGV[1]) then return {-1, applied} end
redis.call('SET', KEYS[2], '1')
return {1, applied}
"""

_OUTCOMES: dict[int, Literal["applied", "before", "behind"]] = {
    1: "applied",
    0: "before",
    -1: "behind",
}


def script_arguments(change: Change, marker: str) -> tuple[list[str], list[str]]:
    """The KEYS and the ARGV after the offsets of `_APPLY` for one change."""
    if isinstance(change, TenantChange):
        obj = tenant_key(change.name)
        if change.document is None:
            return [marker, obj, TENANTS, TENANTS], ["gone", change.name, ""]
        return [marker, obj, TENANTS, TENANTS], ["tenant", change.name, change.document]
    if isinstance(change, KeyChange):
        keys = [marker, record_key(change.key_id), lookup_key(change.digest)]
        first = [(f, change.fields.get(f, "")) for f in LOOKUP_FIELDS]
        rest = [(f, v) for f, v in change.fields.items() if f not in LOOKUP_FIELDS]
        pairs = [part for pair in first + rest for part in pair]
        arguments = ["key", change.key_id, str(2 * len(first)), *pairs]
        return [*keys, owned_key(change.tenant)], arguments
    if isinstance(change, Revocation):
        keys = [marker, record_key(change.key_id), lookup_key(change.digest)]
        return [*keys, owned_key(change.tenant)], ["revoked", repr(change.revoked_at), ""]
    return [marker, marker, marker, marker], ["skip", "", ""]


class ControlView:
    """The view of one config topic (`topic`), or, with none, a view no log stands behind
    (tests, tools): there every read is trusted and writes apply at once.

    `commit` is how the stores' writes take effect (the log's writer, in a process that keeps
    the view); unset, they are applied straight to Redis."""

    def __init__(
        self, redis: RedisClient, topic: str | None = None, commit: Commit | None = None
    ) -> None:
        self.redis = redis
        self.topic = topic
        self._commit = commit
        self._apply = redis.register_script(_APPLY)
        self._ready = redis.register_script(_READY)
        self.marker_key = f"{VIEW}:applied:{topic}"
        self.ready_key = f"{VIEW}:ready:{topic}"

    async def commit(self, changes: Sequence[Change]) -> None:
        if self._commit is not None:
            await self._commit(changes)
            return
        for change in changes:
            await self.apply(change, offset=UNLOGGED, read_from=-1)

    async def apply(self, change: Change, *, offset: int, read_from: int) -> Applied:
        keys, rest = script_arguments(change, self.marker_key)
        code, marker = await self._apply(keys=keys, args=[read_from, offset, *rest])
        return Applied(_OUTCOMES[int(code)], None if int(marker) < 0 else int(marker))

    async def mark_ready(self, reached: int, *, empty_log: bool) -> Applied:
        code, marker = await self._ready(
            keys=[self.marker_key, self.ready_key], args=[reached, "1" if empty_log else "0"]
        )
        return Applied(_OUTCOMES[int(code)], None if int(marker) < 0 else int(marker))

    async def position(self) -> tuple[int | None, bool]:
        """The view's next offset (None: empty) and whether it is ready."""
        marker, ready = await self.redis.mget([self.marker_key, self.ready_key])
        return (None if marker is None else int(marker)), ready is not None

    async def not_ready(self) -> None:
        """Nothing is trusted until the view is read to the end again (a tail was lost)."""
        await self.redis.delete(self.ready_key)

    async def read(self, read: Awaitable[T]) -> T:
        """What `read` finds, once the view is ready; else `ViewRebuilding`: while it is read
        again a hit may be a key whose revocation is not applied yet, a miss one not replayed
        yet. (One round trip with the read: the client pipelines the two.)"""
        if self.topic is None:
            return await read
        found, ready = await asyncio.gather(read, self.redis.exists(self.ready_key))
        if not ready:
            raise ViewRebuilding("The control plane is being rebuilt from Kafka; retry shortly.")
        return found
