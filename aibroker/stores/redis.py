"""The Redis connection, from settings: every command under a deadline and a breaker
(`guard.py`), so a Redis that is down or hung fails fast; and listening to a pub/sub channel
through outages.

A `redis+cluster://` (or `rediss+cluster://`) URL names a Redis Cluster: the client finds its
nodes from that one and sends each command to the node that holds its key. Every multi-key
script and transaction keeps its keys in one hash slot (`{…}` hash tags, see `keyspace.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import RedisError

from aibroker.settings.redis import RedisSettings
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


class GuardedRedisCluster(RedisCluster):
    """`GuardedRedis` for a Redis Cluster. Commands with a key are the ones auto-pipelined (a
    cluster pipeline splits them by node); those redis-py sends to chosen nodes (`SCRIPT
    LOAD` to every primary, `FLUSHDB`, `PING`) go on their own."""

    guard: RedisGuard
    batched: AutoPipeline | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        keyed = args[0] not in self.command_flags and "target_nodes" not in options
        if self.batched is not None and keyed:
            return await self.batched.send(args, options)
        command: Callable[..., Awaitable[Any]] = super().execute_command
        return await self.guard.run(lambda: command(*args, **options))

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> GuardedClusterPipeline:
        pipe = GuardedClusterPipeline(self, transaction)  # type: ignore[abstract]  # redis-py's stubs
        pipe.guard = self.guard
        return pipe


class GuardedClusterPipeline(ClusterPipeline):
    guard: RedisGuard

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        run = super().execute
        return await self.guard.run(lambda: run(raise_on_error, allow_redirections))


RedisClient = Redis | RedisCluster
"""What the stores are given: one Redis, or a Redis Cluster (`redis+cluster://`)."""


def is_cluster(redis: RedisClient) -> bool:
    return isinstance(redis, RedisCluster)


def write_together(redis: RedisClient) -> Pipeline | ClusterPipeline:
    """A MULTI/EXEC of writes on one Redis. A cluster's transactions cannot span hash slots,
    so there the writes go as one pipeline instead: use it only where readers already skip
    a half-written entry (an index naming a record that is gone)."""
    return redis.pipeline(transaction=not is_cluster(redis))


@asynccontextmanager
async def connect(settings: RedisSettings) -> AsyncIterator[RedisClient]:
    """A client whose commands time out after `call_timeout_s` (a path may set a shorter
    deadline, `guard.deadline`) and fail at once while Redis is treated as down."""
    if not settings.url:
        raise RuntimeError("AIBROKER_REDIS_URL is not set (aibroker dev sets it for you)")
    cluster = cluster_url(settings.url) is not None
    guard = RedisGuard(
        settings.call_timeout_s,
        failures_to_open=settings.breaker_failures,
        cooldown_s=settings.breaker_cooldown_s,
        concurrency=settings.max_connections if cluster else None,
    )
    client = _cluster(settings, guard) if cluster else _single(settings, guard)
    try:
        yield client
    finally:
        try:
            async with asyncio.timeout(5.0):  # a hung Redis must not hold a process that stops
                await client.aclose()
        except TimeoutError:
            log.warning("Redis connections not closed within 5s; leaving them")


def cluster_url(url: str) -> str | None:
    """The plain URL of a `redis+cluster://` or `rediss+cluster://` one; None for any other."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.removesuffix('+cluster')}{sep}{rest}" if scheme.endswith("+cluster") else None


_SOCKETS: dict[str, Any] = {
    "decode_responses": True,
    "socket_timeout": 2.0,
    "socket_connect_timeout": 2.0,
    "health_check_interval": 10,
}


def _single(settings: RedisSettings, guard: RedisGuard) -> GuardedRedis:
    # A blocking pool: past max_connections a caller waits for a free connection instead of
    # failing, so 500 in-flight handlers share a few sockets; the guard's deadline bounds the
    # wait, so a pool drained by a hung Redis costs a caller its deadline, never more.
    assert settings.url
    pool = BlockingConnectionPool.from_url(
        settings.url, max_connections=settings.max_connections, timeout=5.0, **_SOCKETS
    )
    client = GuardedRedis(connection_pool=pool)
    client.auto_close_connection_pool = True  # the client owns the pool and closes it
    client.guard = guard
    if settings.autopipeline:
        client.batched = AutoPipeline(
            lambda: Pipeline(pool, client.response_callbacks, False, None), guard
        )
    return client


def _cluster(settings: RedisSettings, guard: RedisGuard) -> GuardedRedisCluster:
    # redis-py's cluster client fails a call past max_connections to a node instead of
    # waiting; the guard's concurrency bound (settings.max_connections calls at a time)
    # keeps every node under it, so callers wait for a slot within their deadline instead.
    url = cluster_url(settings.url or "")
    assert url
    client = GuardedRedisCluster.from_url(url, max_connections=settings.max_connections, **_SOCKETS)
    assert isinstance(client, GuardedRedisCluster)
    client.guard = guard
    if settings.autopipeline:
        client.batched = AutoPipeline(lambda: RedisCluster.pipeline(client, False), guard)
    return client


log = logging.getLogger(__name__)


async def listen(redis: RedisClient, channel: str, handle: Callable[[str], None]) -> None:
    """Call `handle` with each message on `channel`, for ever, reconnecting with backoff
    when Redis goes away (messages sent meanwhile are lost: callers re-read state)."""
    delay = 0.5
    while True:
        try:
            if isinstance(redis, RedisCluster):
                await redis.initialize()  # a cluster's pub/sub needs its slot map first
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
