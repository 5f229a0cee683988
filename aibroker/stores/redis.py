"""The Redis connection, from settings, with timeouts short enough to fail fast when it is down;
and listening to a pub/sub channel through outages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from aibroker.settings import RedisSettings


@asynccontextmanager
async def connect(settings: RedisSettings) -> AsyncIterator[Redis]:
    if not settings.url:
        raise RuntimeError("AIBROKER_REDIS_URL is not set (aibroker dev sets it for you)")
    # A blocking pool: past max_connections a caller waits for a free connection (up to
    # the socket timeout) instead of failing, so 500 in-flight handlers share a few sockets.
    pool = BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=5.0,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=10,
    )
    client = Redis.from_pool(pool)  # the client owns the pool and closes it
    try:
        yield client
    finally:
        await client.aclose()


log = logging.getLogger(__name__)


async def listen(redis: Redis, channel: str, handle: Callable[[str], None]) -> None:
    """Call `handle` with each message on `channel`, for ever, reconnecting with backoff
    when Redis goes away (messages sent meanwhile are lost: callers re-read state)."""
    delay = 0.5
    while True:
        try:
            async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(channel)
                delay = 0.5
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        handle(str(message["data"]))
        except (RedisError, OSError) as exc:
            log.warning("%s messages lost (%r); reconnecting in %.1fs", channel, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
