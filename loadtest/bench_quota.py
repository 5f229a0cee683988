"""What one tenant's quota costs the Redis shard that holds it (`{t:<tenant>}`).

    python -m loadtest.bench_quota [--requests 20000] [--in-flight 64]

Admits and settles requests of one tenant and one of its keys (rpm, tpm, concurrency and a
monthly budget all set, so every part of the scripts runs) through the broker's own client,
auto-pipelined, on the embedded Redis alone. Reports the Redis server's CPU per request, so the
rate one shard sustains for one tenant, beside the whole request's Redis cost in
docs/performance/capacity.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from aibroker.devstack import embedded
from aibroker.limits import Limits
from aibroker.settings.redis import RedisSettings
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.quota import RedisQuota
from aibroker.stores.redis import connect
from loadtest.procs import cpu_seconds

BIG = 10**9


async def run(url: str, requests: int, in_flight: int, pid: int) -> dict[str, float]:
    tenant, key_id = f"t-{uuid.uuid4().hex[:6]}", f"key_{uuid.uuid4().hex[:8]}"
    limits = Limits(rpm=BIG, tpm=BIG, concurrency=BIG, budget_usd_month=Decimal(BIG))
    scopes = [(quota_scope(tenant), limits), (quota_scope(tenant, key_id), limits)]
    async with connect(RedisSettings(url=url)) as redis:
        quota = RedisQuota(redis, lease_s=60)
        slots = asyncio.Semaphore(in_flight)

        async def one(i: int) -> None:
            async with slots:
                now = time.time()
                verdict = await quota.admit(f"req_{i}", tenant, scopes, 100, now)
                assert verdict.admitted, verdict
                await quota.settle(f"req_{i}", tenant, 80, Decimal("0.0001"), now)

        await asyncio.gather(*(one(i) for i in range(200)))  # scripts loaded, pool warm
        cpu, start = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(200, 200 + requests)))
        cpu, wall = cpu_seconds(pid) - cpu, time.perf_counter() - start
    per_request_ms = cpu / requests * 1000
    return {
        "requests": requests,
        "redis_cpu_ms_per_request": round(per_request_ms, 4),
        "requests_per_s_driven": round(requests / wall),
        "requests_per_s_per_redis_core": round(1000 / per_request_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    with embedded.redis_server(Path(tempfile.mkdtemp(prefix="bench-quota-"))) as server:
        found = asyncio.run(run(server.url, args.requests, args.in_flight, server.process.pid))
    for name, value in found.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
