"""A Redis of a test's own, to lose: one server, or with `AIBROKER_TEST_REDIS=cluster` a
three-master cluster (the suite's shared Redis is never flushed), the loss itself, and the
address of a Redis that is down or hung."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from redis.asyncio.cluster import RedisCluster

from aibroker.devstack import embedded, redis_cluster
from aibroker.devstack.embedded import free_port
from tests.services import RedisService, redis_client


@contextlib.contextmanager
def own_redis(workdir: Path) -> Iterator[RedisService]:
    if os.environ.get("AIBROKER_TEST_REDIS") == "cluster":
        with redis_cluster.redis_cluster(workdir) as server:
            yield RedisService(server.url, "a three-master Redis Cluster of the test's own")
    else:
        with embedded.redis_server(workdir) as server:
            yield RedisService(server.url, "a Redis of the test's own")


async def flush(url: str) -> None:
    """FLUSHALL on every master: what a restart without persistence leaves."""
    client = redis_client(url)
    try:
        if isinstance(client, RedisCluster):
            await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        else:
            await client.flushall()
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def lost_redis(state: str) -> AsyncIterator[str]:
    """The URL of a Redis that is `down` (nothing listens) or `hung` (a server that takes the
    connection and never answers), for as long as the block runs."""
    port = free_port()
    server = None
    taken: list[asyncio.StreamWriter] = []
    if state == "hung":

        async def never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            taken.append(writer)  # takes the connection, answers nothing

        server = await asyncio.start_server(never_answer, "127.0.0.1", port)
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        for writer in taken:
            writer.close()
        if server is not None:
            server.close()
            await server.wait_closed()
