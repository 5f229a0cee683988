"""A Redis of a test's own, to lose: one server, or with `AIBROKER_TEST_REDIS=cluster` a
three-master cluster (the suite's shared Redis is never flushed), and the loss itself."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from redis.asyncio.cluster import RedisCluster

from aibroker.devstack import embedded, redis_cluster
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
