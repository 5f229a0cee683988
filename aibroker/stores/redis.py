"""The Redis connection, from settings: every command under a deadline and a breaker
(`guard.py`), so a Redis that is down or hung fails fast; and listening to a pub/sub channel
through outages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from aibroker.settings import RedisSettings
from aibroker.stores.autopipeline import AutoPipeline
from aibroker.stores.guard import RedisGuard


class GuardedRedis(Redis):
    """A Redis client whose every command and pipeline runs through a `RedisGuard`; with
    `batched` set, the commands of one event-loop turn go as one pipeline (`autopipeline`)."""

    guard: RedisGuard
    batched: AutoPipeline | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.batched is not None:
            return await self.batched.send(args, options)
        command: Callable[..., Awaitable[Any]] = super().execute_command
        return await self.guard.run(lambda: command(*args, **options))

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> GuardedPipeline:
        pipe = GuardedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.guard = self.guard
        return pipe


class GuardedPipeline(Pipeline):
    guard: RedisGuard

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        run = super().execute
        return await self.guard.run(lambda: run(raise_on_error))


@asynccontextmanager
async def connect(settings: RedisSettings) -> AsyncIterator[Redis]:
    """A client whose commands time out after `call_timeout_s` (a path may set a shorter
    deadline, `guard.deadline`) and fail at once while Redis is treated as down."""
    if not settings.url:
        raise RuntimeError("AIBROKER_REDIS_URL is not set (aibroker dev sets it for you)")
    # A blocking pool: past max_connections a caller waits for a free connection instead of
    # failing, so 500 in-flight handlers share a few sockets; the guard's deadline bounds the
    # wait, so a pool drained by a hung Redis costs a caller its deadline, never more.
    pool = BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=5.0,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=10,
    )
    client = GuardedRedis(connection_pool=pool)
    client.auto_close_connection_pool = True  # the client owns the pool and closes it
    client.guard = RedisGuard(
        settings.call_timeout_s,
        failures_to_open=settings.breaker_failures,
        cooldown_s=settings.breaker_cooldown_s,
    )
    if settings.autopipeline:
        client.batched = AutoPipeline(
            lambda: Pipeline(pool, client.response_callbacks, False, None), client.guard
        )
    try:
        yield client
    finally:
        try:
            async with asyncio.timeout(5.0):  # a hung Redis must not hold a process that stops
                await client.aclose()
        except TimeoutError:
            log.warning("Redis connections not closed within 5s; leaving them")


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
