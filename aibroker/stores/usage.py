"""The usage ledger: hourly counters per tenant, written by the usage consumer once per event
(each event's id is remembered for longer than the usage topic keeps it, so a restarted or
replayed consumer counts nothing twice), read by `GET /admin/v1/usage`.

Keys: `aib:usage:<hour>:<tenant>` (a hash of counters; see `aibroker/usage_report.py`),
`{aib:usage:<hour>:<tenant>}:seen:<event id>` (counted; in its counters' slot, so one script
checks and counts on a cluster too), `aib:usage:tenants` (every tenant with usage)."""

from __future__ import annotations

from typing import Protocol

from aibroker.stores.keyspace import same_slot_as
from aibroker.stores.quota import to_nano
from aibroker.stores.redis import RedisClient
from aibroker.usage_report import Counters, hour_of, increments
from schemas.envelopes import UsageEvent

SEEN_TTL_S = 35 * 86400
"""Longer than the usage topic's retention (30 days): a replay from its start finds them all."""
COUNTERS_TTL_S = 400 * 86400

# Count one usage event, once.
#   KEYS[1]  `…:seen:<event id>`, set when the event is counted
#   KEYS[2]  its hour's counters, `aib:usage:<hour>:<tenant>`
#   ARGV[1]  how long the seen mark lasts (s)   ARGV[2]  how long the counters last (s)
#   ARGV[3 + 2i], ARGV[4 + 2i]  for counter i (0-based): its field and what it adds
# Returns 1 when the event is counted now, 0 when it was counted before.
_COUNT = """
local seen, counters = KEYS[1], KEYS[2]
local seen_ttl, counters_ttl = ARGV[1], ARGV[2]
if not redis.call('SET', seen, '1', 'NX', 'EX', seen_ttl) then return 0 end
for i = 3, #ARGV, 2 do redis.call('HINCRBY', counters, ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', counters, counters_ttl)
return 1
"""


class UsageLedger(Protocol):
    async def count(self, event_id: str, event: UsageEvent) -> bool:
        """Add the event to its hour's counters unless `event_id` was counted; True if now."""
        ...

    async def tenants(self) -> list[str]: ...

    async def hours(self, tenants: list[str], first: int, last: int) -> list[Counters]:
        """The counters of these tenants for hours `first` to `last` (inclusive)."""
        ...


class RedisUsageLedger:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._count = redis.register_script(_COUNT)
        self._listed: set[str] = set()
        """Tenants this process has added to `aib:usage:tenants` (the set only grows)."""

    async def count(self, event_id: str, event: UsageEvent) -> bool:
        cost = to_nano(event.cost_usd) if event.cost_usd else 0
        args: list[str | int] = [SEEN_TTL_S, COUNTERS_TTL_S]
        for field, value in increments(event, cost).items():
            args += [field, value]
        hour = _hour(hour_of(event.at), event.tenant)
        keys = [f"{same_slot_as(hour)}:seen:{event_id}", hour]
        counted = bool(await self._count(keys=keys, args=args))
        if counted and event.tenant not in self._listed:  # once a process, not once an event
            await self._redis.sadd("aib:usage:tenants", event.tenant)
            self._listed.add(event.tenant)
        return counted

    async def tenants(self) -> list[str]:
        return sorted(str(t) for t in await self._redis.smembers("aib:usage:tenants"))

    async def hours(self, tenants: list[str], first: int, last: int) -> list[Counters]:
        wanted = [(hour, tenant) for tenant in tenants for hour in range(first, last + 1)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for hour, tenant in wanted:
                pipe.hgetall(_hour(hour, tenant))
            found = await pipe.execute()
        return [
            Counters(hour, tenant, {str(k): str(v) for k, v in fields.items()})
            for (hour, tenant), fields in zip(wanted, found, strict=True)
            if fields
        ]


def _hour(hour: int, tenant: str) -> str:
    return f"aib:usage:{hour}:{tenant}"
