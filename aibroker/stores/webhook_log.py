"""Webhook messages and their delivery attempts in Redis: `aib:wh:msg:{webhook id}` the
message as first made (for an operator's redelivery, and so a redelivered result makes it once),
`aib:wh:log:{request or batch id}` the last 100 attempts about one subject."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from aibroker.stores.redis import RedisClient
from schemas.envelopes import Delivery

LOG_LENGTH = 100
"""Attempts kept per subject; older ones drop off."""


class WebhookLog(Protocol):
    async def made(self, webhook_id: str) -> bool:
        """Whether this message was made before."""
        ...

    async def keep(self, delivery: Delivery) -> None:
        """Keep the message as made (its first attempt done)."""
        ...

    async def message(self, webhook_id: str) -> Delivery | None: ...

    async def attempted(self, subject: str, entry: dict[str, Any]) -> None:
        """Append one attempt to the subject's log."""
        ...

    async def attempts(self, subject: str) -> list[dict[str, Any]]:
        """The subject's log, oldest first."""
        ...


class RedisWebhookLog:
    def __init__(self, redis: RedisClient, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def made(self, webhook_id: str) -> bool:
        return bool(await self._redis.exists(_message(webhook_id)))

    async def keep(self, delivery: Delivery) -> None:
        await self._redis.set(_message(delivery.id), delivery.model_dump_json(), ex=self._ttl_s)

    async def message(self, webhook_id: str) -> Delivery | None:
        stored = await self._redis.get(_message(webhook_id))
        return None if stored is None else Delivery.model_validate_json(stored)

    async def attempted(self, subject: str, entry: dict[str, Any]) -> None:
        key = _log(subject)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, orjson.dumps(entry))
            pipe.ltrim(key, -LOG_LENGTH, -1)
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def attempts(self, subject: str) -> list[dict[str, Any]]:
        return [orjson.loads(e) for e in await self._redis.lrange(_log(subject), 0, -1)]


def _message(webhook_id: str) -> str:
    return f"aib:wh:msg:{webhook_id}"


def _log(subject: str) -> str:
    return f"aib:wh:log:{subject}"
