"""When each API key was last used, for the keys page: `aib:keys:last_used`, a hash of key id →
Unix time, written at authentication at most once per `every_s` per key and process (so a
busy key costs one write a minute, not one per request), off the request's path."""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from aibroker.stores.redis import RedisClient

log = logging.getLogger(__name__)

LAST_USED = "aib:keys:last_used"
EVERY_S = 60.0
"""How stale a shown last use may be: the most one process waits before writing it again."""
REMEMBERED = 100_000
"""Keys whose last write a process remembers before it forgets them all (and writes again)."""


def due(last_written: float | None, now: float, every_s: float = EVERY_S) -> bool:
    """Whether a use at `now` should be written, the last write being `last_written`."""
    return last_written is None or now - last_written >= every_s


class KeyUse:
    def __init__(self, redis: RedisClient, every_s: float = EVERY_S) -> None:
        self._redis = redis
        self._every_s = every_s
        self._written: dict[str, float] = {}
        self._writes: set[asyncio.Task[None]] = set()

    def used(self, key_id: str, now: float) -> None:
        """Note a use; writes it in the background when the last write is `every_s` old."""
        if not due(self._written.get(key_id), now, self._every_s):
            return
        if len(self._written) >= REMEMBERED:
            self._written.clear()
        self._written[key_id] = now
        task = asyncio.create_task(self._write(key_id, now))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, key_id: str, now: float) -> None:
        try:
            await self._redis.hset(LAST_USED, key_id, repr(round(now, 3)))
        except RedisError as exc:  # a shown last use a minute staler: never a refused call
            self._written.pop(key_id, None)
            log.debug("last use of %s not written (%r)", key_id, exc)

    async def last_used(self, key_ids: list[str]) -> dict[str, float]:
        """The known last uses of these keys (a key never used, or not since, is absent)."""
        if not key_ids:
            return {}
        found = await self._redis.hmget(LAST_USED, key_ids)
        return {k: float(v) for k, v in zip(key_ids, found, strict=True) if v is not None}
