"""Batch jobs' state in Redis: `aib:batch:{id}` a hash of the OpenAI batch object's fields
(JSON values; `completed`, `failed` counters), `…:lines` one output line per custom_id (the
first recorded wins, so a line redelivered or re-expanded after a crash is counted once),
`…:expanded` how many input lines were fed, `aib:tenant:{t}:batches` by creation time,
`aib:batches:active` those not yet ended."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

ENDED = ("completed", "failed", "expired", "cancelled")

_TRANSITION = """
local status = cjson.decode(redis.call('HGET', KEYS[1], 'status') or '""')
for i = 3, #ARGV do
  if ARGV[i] == status then
    redis.call('HSET', KEYS[1], 'status', cjson.encode(ARGV[1]), ARGV[1] .. '_at', ARGV[2])
    return 1
  end
end
return 0
"""

_RECORD = """
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return {tonumber(redis.call('HGET', KEYS[1], 'completed') or 0),
        tonumber(redis.call('HGET', KEYS[1], 'failed') or 0),
        tonumber(redis.call('HGET', KEYS[1], 'total') or 0)}
"""


class BatchStore:
    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._transition = redis.register_script(_TRANSITION)
        self._record = redis.register_script(_RECORD)

    async def create(self, doc: dict[str, Any], tenant: str, total: int) -> None:
        key = _key(doc["id"])
        fields: dict[str, str] = {
            k: orjson.dumps(v).decode() for k, v in doc.items() if k != "request_counts"
        }
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(key, mapping=fields)  # type: ignore[arg-type]  # redis-py's Mapping is invariant
            tx.hset(key, "tenant", orjson.dumps(tenant).decode())
            tx.hset(key, mapping={"total": total, "completed": 0, "failed": 0})
            tx.expire(key, self._ttl_s)
            tx.zadd(f"aib:tenant:{tenant}:batches", {doc["id"]: doc["created_at"]})
            if doc["status"] not in ENDED:
                tx.sadd("aib:batches:active", doc["id"])
            await tx.execute()

    async def get(self, batch_id: str, tenant: str | None = None) -> dict[str, Any] | None:
        """The batch object with its `tenant` and `key_id` (None for a missing one, or with
        `tenant` given, another tenant's)."""
        raw = await self._redis.hgetall(_key(batch_id))
        if not raw:
            return None
        counts = {k: int(raw.pop(k, 0)) for k in ("total", "completed", "failed")}
        doc: dict[str, Any] = {str(k): orjson.loads(v) for k, v in raw.items()}
        if tenant is not None and doc.get("tenant") != tenant:
            return None
        return doc | {"request_counts": counts}

    async def page(self, tenant: str, limit: int, after: str | None) -> list[dict[str, Any]]:
        """Newest first, `limit` of them after the batch `after`."""
        ids = [str(i) for i in await self._redis.zrevrange(f"aib:tenant:{tenant}:batches", 0, -1)]
        if after in ids:
            ids = ids[ids.index(after) + 1 :]
        docs = [await self.get(i, tenant) for i in ids[:limit]]
        return [d for d in docs if d is not None]

    async def update(self, batch_id: str, **fields: Any) -> None:
        await self._redis.hset(
            _key(batch_id), mapping={k: orjson.dumps(v) for k, v in fields.items()}
        )

    async def transition(self, batch_id: str, to: str, now: int, *, from_: tuple[str, ...]) -> bool:
        """Move to status `to` (stamping `{to}_at`) if the batch is in one of `from_`."""
        done = await self._transition(keys=[_key(batch_id)], args=[to, now, *from_])
        if done and to in ENDED:
            await self._redis.srem("aib:batches:active", batch_id)
        return bool(done)

    async def record(
        self, batch_id: str, custom_id: str, ok: bool, line: dict[str, Any]
    ) -> tuple[int, int, int]:
        """Keep a line's output (the first for its custom_id); (completed, failed, total)."""
        value = (b"1" if ok else b"0") + orjson.dumps(line)
        counter = "completed" if ok else "failed"
        found = await self._record(
            keys=[_key(batch_id), f"{_key(batch_id)}:lines"],
            args=[custom_id, value, counter, self._ttl_s],
        )
        completed, failed, total = (int(n) for n in found)
        return completed, failed, total

    async def recorded(self, batch_id: str) -> set[str]:
        return {str(c) for c in await self._redis.hkeys(f"{_key(batch_id)}:lines")}

    async def lines(self, batch_id: str) -> tuple[list[bytes], list[bytes]]:
        """The output lines and the error lines, as JSONL rows."""
        rows = [str(r) for r in await self._redis.hvals(f"{_key(batch_id)}:lines")]
        ok = [r[1:].encode() for r in rows if r.startswith("1")]
        failed = [r[1:].encode() for r in rows if r.startswith("0")]
        return ok, failed

    async def expanded(self, batch_id: str) -> int:
        return int(await self._redis.get(f"{_key(batch_id)}:expanded") or 0)

    async def mark_expanded(self, batch_id: str, count: int) -> None:
        await self._redis.set(f"{_key(batch_id)}:expanded", count, ex=self._ttl_s)

    async def active(self) -> list[str]:
        return sorted(str(i) for i in await self._redis.smembers("aib:batches:active"))


def _key(batch_id: str) -> str:
    return f"aib:batch:{batch_id}"
