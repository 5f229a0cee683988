"""The response cache behind two ingress processes (each its own instance and reply topic) and
two dispatcher replicas, in front of one pool: identical misses split across both ingresses
make one provider call, every caller answered with its one answer (the single-flight lock is in
Redis, shared by every replica); and an ingress that cannot reach Redis goes on as on a miss
(the request is written, and the dispatcher still serves the hit)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from aibroker.stores.redis import cluster_url
from loadtest.faults import Restartable
from loadtest.stack import Stack
from tests.e2e.conftest import running_stack
from tests.e2e.test_cache import CACHE, ask, cache_outcomes, calls, chat
from tests.scrape import metric
from tests.services import KafkaService, RedisService
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {"AIBROKER_CACHE_ENABLED": "true"}
    with running_stack(kafka, redis_svc, tmp_path_factory.mktemp("ingresses"), extra_env=env) as s:
        yield s


@dataclass
class Second:
    """The second ingress: its URL, its metrics, and the proxy its Redis is reached through."""

    url: str
    metrics_url: str
    redis_proxy: Restartable


@pytest.fixture(scope="module")
def second(stack: Stack, redis_svc: RedisService) -> Iterator[Second]:
    """A second ingress process on the stack's topics and Redis (through a proxy a test can
    cut), and a second dispatcher replica joining the first's group."""
    if cluster_url(redis_svc.url):
        pytest.skip("the Redis proxy stands for one Redis server, not a cluster")
    redis = urlsplit(redis_svc.url)
    assert redis.hostname is not None
    assert redis.port is not None
    proxy_port = stack.ports.any_free("the second ingress's Redis proxy")
    upstream = f"{redis.hostname}:{redis.port}"
    proxy = Restartable(
        "redis-proxy",
        [sys.executable, "-m", "loadtest.tcpproxy", "--port", str(proxy_port), "--to", upstream],
        proxy_port,
        stack.logs / "redis-proxy.log",
    )
    netloc = redis.netloc.replace(f"{redis.hostname}:{redis.port}", f"127.0.0.1:{proxy_port}")
    port = stack.ports.any_free("the second ingress")
    metrics_port = stack.ports.any_free("the second ingress's metrics")
    env = stack.env() | {
        "AIBROKER_INGRESS_PORT": str(port),
        "AIBROKER_METRICS_PORT": str(metrics_port),
        "AIBROKER_REDIS_URL": redis._replace(netloc=netloc).geturl(),
    }
    ingress = Restartable(
        "ingress2",
        [sys.executable, "-m", "aibroker", "ingress"],
        port,
        stack.logs / "ingress2.log",
        env,
    )
    proxy.start()
    try:
        ingress.start()
        stack.start_service("dispatcher", replica="dispatcher2")
        yield Second(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", proxy)
    finally:
        ingress.stop()
        proxy.stop()


@pytest.fixture
async def both(stack: Stack, second: Second) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A client of each ingress, once both answer and both dispatchers have handled work
    (the second's group join settled: a racing test must not wait out a rebalance)."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with (
        httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=90) as one,
        httpx.AsyncClient(base_url=second.url, headers=headers, timeout=90) as two,
    ):
        replica = f"http://127.0.0.1:{stack.metrics_ports['dispatcher2']}/metrics"

        async def settled() -> bool:
            answers = await asyncio.gather(chat(one, ask()), chat(two, ask()))
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
            try:
                handled = await metric(
                    replica, "aibroker_worker_messages_total", worker="dispatcher.interactive"
                )
            except httpx.ConnectError:
                return False  # the replica's process is still starting
            return handled > 0

        await eventually(settled, timeout_s=90, interval_s=0.2, what="both dispatchers serving")
        yield [one, two]


async def test_identical_misses_across_two_ingresses_make_one_call(
    stack: Stack, both: list[httpx.AsyncClient]
) -> None:
    body = ask(model="mock/latency-700")
    answers = await asyncio.gather(*(chat(both[i % 2], body) for i in range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.json()["id"] for a in answers}) == 1  # one provider call answered all eight
    assert sorted(a.headers[CACHE] for a in answers) == ["hit"] * 7 + ["miss"]
    assert await calls(stack, body) == 1


async def test_an_ingress_without_redis_goes_on_as_on_a_miss(
    stack: Stack, second: Second, both: list[httpx.AsyncClient]
) -> None:
    one, two = both
    body = ask()
    stored = await chat(one, body)
    assert (await chat(two, body)).headers[CACHE] == "hit"  # answered by the second ingress
    served_there = await metric(second.metrics_url, "aibroker_cache_requests_total")
    at_dispatchers = sum(
        [await cache_outcomes(stack, name, "hit") for name in ("dispatcher", "dispatcher2")]
    )
    second.redis_proxy.stop(kill=True)  # the second ingress's Redis is gone; the rest's is not
    try:
        started = time.monotonic()
        again = await chat(two, body)
        took = time.monotonic() - started
        fresh = await chat(two, ask())
    finally:
        second.redis_proxy.start()
    assert again.status_code == 200, again.text
    assert again.headers[CACHE] == "hit"  # found by a dispatcher, which still reaches Redis
    assert again.json()["id"] == stored.json()["id"]
    assert took < 5  # the lookup failed fast; no wait on Redis
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers[CACHE] == "miss"
    assert await metric(second.metrics_url, "aibroker_cache_requests_total") == served_there

    async def counted_there() -> bool:
        hits = [await cache_outcomes(stack, n, "hit") for n in ("dispatcher", "dispatcher2")]
        return sum(hits) == at_dispatchers + 1

    await eventually(counted_there, what="the hit counted by a dispatcher")
