"""Where a request's reversible redaction keeps its map (placeholder → the caller's value):
Redis, under `aib:pii:{<request id>}` with the request's TTL; never the envelope, Kafka, a log
or a span. The guard that redacted the input writes it before the request is written; the
pool that publishes the answer reads it to restore the placeholders, then deletes it.

Why Redis and not an encrypted Kafka header: a Kafka record is replicated, kept for the
topic's retention, readable by every consumer of the topic and replayed from the DLQ, so a
header would spread the values as far as the request goes, for as long as it is kept; Redis
holds the request's state and result for the same TTL, and forgets. The map is not encrypted
there: the restored answer sits beside it in Redis with the same values, so a key the same
processes hold would add nothing against a reader of Redis."""

from __future__ import annotations

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster


def restore_key(request_id: str) -> str:
    """`aib:pii:{<id>}`: in the request's hash slot, like its state and result."""
    return f"aib:pii:{{{request_id}}}"


class RestoreMaps:
    """The maps of the requests in flight, by request id."""

    def __init__(self, redis: Redis | RedisCluster, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def put(self, request_id: str, values: dict[str, str]) -> None:
        await self._redis.set(restore_key(request_id), orjson.dumps(values), ex=self._ttl_s)

    async def get(self, request_id: str) -> dict[str, str]:
        """The request's map (empty: none kept, or expired)."""
        found = await self._redis.get(restore_key(request_id))
        if not found:
            return {}
        values = orjson.loads(found)
        return {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}

    async def forget(self, request_id: str) -> None:
        await self._redis.delete(restore_key(request_id))
