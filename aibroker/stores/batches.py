"""Batch jobs' state in Redis: `aib:batch:<id>` a hash of the OpenAI batch object's fields
(JSON values; `completed`, `failed` counters, `spent_picousd` what the recorded lines cost in
10^-12 USD, an integer so that the sum is exact, `offloaded` how many of them a provider batch
answered), and in its slot (`{aib:batch:<id>}:…`, see
`keyspace.py`): `…:lines` one output line per custom_id (the first recorded wins, so a line
redelivered or re-expanded after a crash is counted once), `…:ids` the custom ids of its lines
(the sweeper closes the open ones without reading the file again), `…:expanded` how many input
lines were fed. Indexes: `aib:tenant:<t>:batches` by creation time, `aib:batches:active` those
not yet ended; a batch is written before them, so a crash in between leaves a batch nobody
was told of, which expires."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

import orjson

from aibroker.rules.batch_bounds import Tally
from aibroker.stores.keyspace import same_slot_as
from aibroker.stores.redis import RedisClient
from schemas.batches import Batch, BatchStatus

# Move a batch to a status if it is in one of the given ones (with more fields, set only then).
#   KEYS[1]  the batch, `aib:batch:<id>` (its fields JSON-encoded)
#   ARGV[1]  the new status   ARGV[2]  now, stamped as `<status>_at`
#   ARGV[3]  a JSON object of other fields to set as it moves (their values JSON-encoded)
#   ARGV[4 + i]  (i = 0, 1, …) the statuses it may move from
# Returns 1 when it moved, else 0.
_TRANSITION = """
local batch, to, now = KEYS[1], ARGV[1], ARGV[2]
local status = cjson.decode(redis.call('HGET', batch, 'status') or '""')
for i = 4, #ARGV do
  if ARGV[i] == status then
    redis.call('HSET', batch, 'status', cjson.encode(to), to .. '_at', now)
    for field, value in pairs(cjson.decode(ARGV[3])) do
      redis.call('HSET', batch, field, value)
    end
    return 1
  end
end
return 0
"""

# Keep a line's output, the first for its custom id only, and count it and its cost.
#   KEYS[1]  the batch, `aib:batch:<id>`   KEYS[2]  its output lines, `…:lines`
#   ARGV[1]  the custom id   ARGV[2]  the line ('1' or '0' for ok or failed, then its JSON)
#   ARGV[3]  the counter it adds to, `completed` or `failed`   ARGV[4]  how long lines last (s)
#   ARGV[5]  what the line cost, in 10^-12 USD (added to `spent_picousd`)
#   ARGV[6]  '1' if a provider batch answered it (added to `offloaded`), else '0'
# Returns {completed, failed, total, spent_picousd} (the spend as a string: it may pass 2^53).
_RECORD = """
local batch, lines = KEYS[1], KEYS[2]
local custom_id, line, counter, ttl, cost = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HSETNX', lines, custom_id, line) == 1 then
  redis.call('HINCRBY', batch, counter, 1)
  if cost ~= '0' then
    redis.call('HINCRBY', batch, 'spent_picousd', cost)
  end
  if ARGV[6] == '1' then
    redis.call('HINCRBY', batch, 'offloaded', 1)
  end
  redis.call('EXPIRE', lines, ttl)
end
return {tonumber(redis.call('HGET', batch, 'completed') or 0),
        tonumber(redis.call('HGET', batch, 'failed') or 0),
        tonumber(redis.call('HGET', batch, 'total') or 0),
        redis.call('HGET', batch, 'spent_picousd') or '0'}
"""
PICO = Decimal("1e12")
"""`spent_picousd` counts 10^-12 USD: exact for every listed price, and 9 million USD fit."""
_COUNTED = {"request_counts", "aibroker_cost_usd", "aibroker_offloaded_lines"}
"""The batch object's fields the Lua scripts count, kept apart from its JSON fields."""


class BatchStore(Protocol):
    async def create(self, batch: Batch, custom_ids: list[str]) -> None:
        """Keep a new batch and the custom ids of its lines (none for a failed one)."""
        ...

    async def get(self, batch_id: str, tenant: str | None = None) -> Batch | None:
        """The batch (None for a missing one, or with `tenant` given, another tenant's)."""
        ...

    async def page(self, tenant: str, limit: int, after: str | None) -> list[Batch]:
        """Newest first, `limit` of them after the batch `after`."""
        ...

    async def update(self, batch_id: str, **fields: Any) -> None: ...

    async def transition(
        self,
        batch_id: str,
        to: BatchStatus,
        now: int,
        *,
        from_: tuple[BatchStatus, ...],
        also: dict[str, Any] | None = None,
    ) -> bool:
        """Move to status `to` (stamping `{to}_at`, setting the fields `also` names) if the
        batch is in one of `from_`."""
        ...

    async def record(
        self,
        batch_id: str,
        custom_id: str,
        ok: bool,
        line: dict[str, Any],
        cost_usd: Decimal | None = None,
        *,
        offloaded: bool = False,
    ) -> Tally:
        """Keep a line's output and add its cost, and count it `offloaded` if a provider batch
        answered it (the first for its custom_id only); the batch's counts and spend after it."""
        ...

    async def unrecorded(self, batch_id: str) -> list[str]:
        """The custom ids of the lines that have no output yet."""
        ...

    async def lines(self, batch_id: str) -> tuple[list[bytes], list[bytes]]:
        """The output lines and the error lines, as JSONL rows."""
        ...

    async def expanded(self, batch_id: str) -> int:
        """How many input lines were fed."""
        ...

    async def mark_expanded(self, batch_id: str, count: int) -> None: ...

    async def active(self) -> list[str]:
        """The ids of the batches not yet ended."""
        ...


class RedisBatchStore:
    def __init__(self, redis: RedisClient, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._transition = redis.register_script(_TRANSITION)
        self._record = redis.register_script(_RECORD)

    async def create(self, batch: Batch, custom_ids: list[str]) -> None:
        key = _key(batch.id)
        doc = batch.model_dump(mode="json", exclude=_COUNTED)
        fields = {k: orjson.dumps(v).decode() for k, v in doc.items()}
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(key, mapping=fields)  # type: ignore[arg-type]  # redis-py's Mapping is invariant
            tx.hset(key, mapping={"total": len(custom_ids), "completed": 0, "failed": 0})
            tx.expire(key, self._ttl_s)
            if custom_ids:
                tx.sadd(_part(batch.id, "ids"), *custom_ids)
                tx.expire(_part(batch.id, "ids"), self._ttl_s)
            await tx.execute()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(f"aib:tenant:{batch.tenant}:batches", {batch.id: batch.created_at})
            if not batch.status.ended:
                pipe.sadd("aib:batches:active", batch.id)
            await pipe.execute()

    async def get(self, batch_id: str, tenant: str | None = None) -> Batch | None:
        raw = await self._redis.hgetall(_key(batch_id))
        if not raw:
            return None
        counts = {k: int(raw.pop(k, 0)) for k in ("total", "completed", "failed")}
        spent = Decimal(int(raw.pop("spent_picousd", 0))) / PICO
        offloaded = int(raw.pop("offloaded", 0))
        doc: dict[str, Any] = {str(k): orjson.loads(v) for k, v in raw.items()}
        if tenant is not None and doc.get("tenant") != tenant:
            return None
        counted = {
            "request_counts": counts,
            "aibroker_cost_usd": format(spent.normalize(), "f"),
            "aibroker_offloaded_lines": offloaded,
        }
        return Batch.model_validate(doc | counted)

    async def page(self, tenant: str, limit: int, after: str | None) -> list[Batch]:
        ids = [str(i) for i in await self._redis.zrevrange(f"aib:tenant:{tenant}:batches", 0, -1)]
        if after in ids:
            ids = ids[ids.index(after) + 1 :]
        batches = [await self.get(i, tenant) for i in ids[:limit]]
        return [b for b in batches if b is not None]

    async def update(self, batch_id: str, **fields: Any) -> None:
        await self._redis.hset(
            _key(batch_id), mapping={k: orjson.dumps(v) for k, v in fields.items()}
        )

    async def transition(
        self,
        batch_id: str,
        to: BatchStatus,
        now: int,
        *,
        from_: tuple[BatchStatus, ...],
        also: dict[str, Any] | None = None,
    ) -> bool:
        fields = orjson.dumps({k: orjson.dumps(v).decode() for k, v in (also or {}).items()})
        done = await self._transition(
            keys=[_key(batch_id)], args=[to.value, now, fields, *(s.value for s in from_)]
        )
        if done and to.ended:
            await self._redis.srem("aib:batches:active", batch_id)
        return bool(done)

    async def record(
        self,
        batch_id: str,
        custom_id: str,
        ok: bool,
        line: dict[str, Any],
        cost_usd: Decimal | None = None,
        *,
        offloaded: bool = False,
    ) -> Tally:
        value = (b"1" if ok else b"0") + orjson.dumps(line)
        counter = "completed" if ok else "failed"
        pico = (cost_usd or Decimal(0)) * PICO
        found = await self._record(
            keys=[_key(batch_id), _part(batch_id, "lines")],
            args=[
                custom_id,
                value,
                counter,
                self._ttl_s,
                int(pico.quantize(1, ROUND_HALF_UP)),
                "1" if offloaded else "0",
            ],
        )
        completed, failed, total, spent = (int(n) for n in found)
        return Tally(completed, failed, total, (Decimal(spent) / PICO).normalize())

    async def unrecorded(self, batch_id: str) -> list[str]:
        ids = {str(c) for c in await self._redis.smembers(_part(batch_id, "ids"))}
        done = {str(c) for c in await self._redis.hkeys(_part(batch_id, "lines"))}
        return sorted(ids - done)

    async def lines(self, batch_id: str) -> tuple[list[bytes], list[bytes]]:
        rows = [str(r) for r in await self._redis.hvals(_part(batch_id, "lines"))]
        ok = [r[1:].encode() for r in rows if r.startswith("1")]
        failed = [r[1:].encode() for r in rows if r.startswith("0")]
        return ok, failed

    async def expanded(self, batch_id: str) -> int:
        return int(await self._redis.get(_part(batch_id, "expanded")) or 0)

    async def mark_expanded(self, batch_id: str, count: int) -> None:
        await self._redis.set(_part(batch_id, "expanded"), count, ex=self._ttl_s)

    async def active(self) -> list[str]:
        return sorted(str(i) for i in await self._redis.smembers("aib:batches:active"))


def _key(batch_id: str) -> str:
    return f"aib:batch:{batch_id}"


def _part(batch_id: str, part: str) -> str:
    """One of the batch's other keys, in its slot."""
    return f"{same_slot_as(_key(batch_id))}:{part}"
