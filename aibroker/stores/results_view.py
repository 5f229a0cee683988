"""What tells the results sink that Redis lost request states and results, and what a rebuild
from Kafka writes besides the results themselves (`consumers/results/rebuild.py`).

Marks are spread over the hash slots (one in each of `MARKS` equal ranges), so on a Redis
Cluster every shard holds some: a flushed Redis, or one shard replaced, loses marks with it.
"""

from __future__ import annotations

from functools import cache

from redis.crc import key_slot

from aibroker.stores.keyspace import request_key
from aibroker.stores.redis import RedisClient

MARKS = 64
SLOTS = 16384


@cache
def intact_marks(count: int = MARKS) -> tuple[str, ...]:
    """`count` keys, the i-th in a hash slot of the i-th of `count` equal slot ranges."""
    width = SLOTS // count
    found: dict[int, str] = {}
    n = 0
    while len(found) < count:
        key = f"aib:results:intact:{{m{n}}}"
        found.setdefault(key_slot(key.encode()) // width, key)
        n += 1
    return tuple(found[i] for i in range(count))


# A request's state as queued, unless it has one (its own later states win over a rebuild's).
#   KEYS[1]  its state, `aib:req:{<id>}`
#   ARGV[1]  its tenant   ARGV[2]  how long the state lasts (s)
# Returns 1 when written, 0 when it had a state.
_QUEUED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'tenant', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class ResultsView:
    def __init__(self, redis: RedisClient, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._queued = redis.register_script(_QUEUED)

    async def intact(self) -> bool:
        """Every mark is there: nothing says Redis lost states since the last rebuild."""
        marks = intact_marks()
        return int(await self._redis.exists(*marks)) == len(marks)

    async def mark_intact(self) -> None:
        """Set before a rebuild reads Kafka: a loss during the rebuild is noticed again."""
        for mark in intact_marks():
            await self._redis.set(mark, "1")

    async def queued_unless_known(self, request_id: str, tenant: str) -> bool:
        """A request accepted before the loss reads as queued until its next state."""
        done = await self._queued(keys=[request_key("req", request_id)], args=[tenant, self._ttl_s])
        return bool(done)
