"""The Redis connection, from settings, with timeouts short enough to fail fast when it is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from aibroker.settings import RedisSettings


@asynccontextmanager
async def connect(settings: RedisSettings) -> AsyncIterator[Redis]:
    if not settings.url:
        raise RuntimeError("AIBROKER_REDIS_URL is not set (aibroker dev sets it for you)")
    client = Redis.from_url(
        settings.url,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=10,
    )
    try:
        yield client
    finally:
        await client.aclose()
