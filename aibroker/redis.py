"""The Redis connection, from settings, with timeouts short enough to fail fast when it is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import BlockingConnectionPool, Redis

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
