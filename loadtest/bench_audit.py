"""What `GET /admin/v1/audit` costs as the audit topic grows: each query answers within its scan
budget whatever the topic holds.

    python -m loadtest.bench_audit [--sizes 10000,1000000] [--engine apache|tansu]

For each size, a fresh audit topic is filled in large batches (entries spread over the last
ten days, one tenant in a thousand entries the sparse one), then an in-process ingress is
asked, several times each: every entry (limit 100), a sparse tenant, an actor nobody is, the
last hour (Kafka's time index), and a sparse tenant followed page by page to the end of the log.
Prints a Markdown table (median latency of a call, what it found, pages) and writes
loadtest/results/audit.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer

from aibroker.devstack import apache_kafka, embedded
from aibroker.devstack.embedded import free_port
from aibroker.kafka.clients import connection, encode
from aibroker.settings import DevSettings, KafkaSettings, RedisSettings, Settings
from ingress.app import create_app
from schemas.audit import AuditEntry, AuditOutcome
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue

SPAN_S = 10 * 86400.0
"""The entries' times: spread evenly over the last ten days."""
SPARSE_EVERY = 1000
"""One entry in this many is the sparse tenant's."""
BATCH = 5000
ACTIONS = ("key.create", "key.revoke", "tenant.put", "auth.refused", "ratelimit.reset")


def entry_bytes(i: int, at: float) -> tuple[bytes, bytes]:
    tenant = "t-sparse" if i % SPARSE_EVERY == 0 else f"t-{i % 97}"
    entry = AuditEntry(
        at=at,
        actor=f"aib_{i % 1013:06d}",
        role="admin",
        action=ACTIONS[i % len(ACTIONS)],
        tenant=tenant,
        target=f"key_{i:012d}",
        outcome=AuditOutcome.OK,
        source="10.0.0.1",
        request_id=f"req_{i:016d}",
        detail={"prefix": f"aib_{i % 1013:06d}", "name": "ci"},
    )
    return tenant.encode(), encode(entry)


async def fill(kafka: KafkaSettings, topic: str, count: int) -> float:
    """Write `count` entries, oldest first; the seconds it took."""
    producer = AIOKafkaProducer(**connection(kafka), acks="all", max_batch_size=1 << 20)
    await producer.start()
    started = time.perf_counter()
    first = time.time() - SPAN_S
    try:
        pending: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for i in range(count):
            at = first + SPAN_S * i / count
            key, value = entry_bytes(i, at)
            if batch.append(key=key, value=value, timestamp=int(at * 1000)) is None:
                pending.append(await producer.send_batch(batch, topic, partition=0))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=int(at * 1000))
            if len(pending) >= 32:
                await asyncio.gather(*pending)
                pending = []
        pending.append(await producer.send_batch(batch, topic, partition=0))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def ingress(settings: Settings) -> AsyncIterator[str]:
    port = free_port()
    app = create_app(
        settings.model_copy(update={"ingress": settings.ingress.model_copy(update={"port": port})})
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(600):  # up to 30 s
        if server.started:
            break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError("ingress did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def timed(client: httpx.AsyncClient, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    answer = await client.get("/admin/v1/audit", params=params)
    took = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return took, page


async def measure(url: str, admin_key: str, count: int, repeat: int) -> list[dict[str, Any]]:
    now = time.time()
    queries: dict[str, dict[str, Any]] = {
        "every entry": {},
        "every entry, from=0 (the fuzzed query)": {"from": 0},
        "sparse tenant": {"tenant": "t-sparse"},
        "no such actor": {"actor": "aib_nobody"},
        "last hour, every entry": {"from": now - 3600},
        "last hour, no such actor": {"from": now - 3600, "actor": "aib_nobody"},
    }
    rows = []
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        await timed(client, {"limit": 1})  # connections and the first consumer warm
        for name, params in queries.items():
            took: list[float] = []
            for _ in range(repeat):
                seconds, page = await timed(client, {"limit": 100, **params})
                took.append(seconds)
            rows.append(
                {
                    "entries": count,
                    "query": name,
                    "median_ms": round(statistics.median(took) * 1000, 1),
                    "max_ms": round(max(took) * 1000, 1),
                    "found": len(page["data"]),
                    "has_more": page["has_more"],
                }
            )
        # A sparse filter followed to the end of the log, page by page.
        pages, found, after, started, slowest = 0, 0, -1, time.perf_counter(), 0.0
        while True:
            seconds, page = await timed(
                client, {"tenant": "t-sparse", "limit": 500, "after": after}
            )
            pages, found, slowest = pages + 1, found + len(page["data"]), max(slowest, seconds)
            after = page["next_after"]
            if not page["has_more"]:
                break
        total = time.perf_counter() - started
        rows.append(
            {
                "entries": count,
                "query": "sparse tenant, every page",
                "median_ms": round(total / pages * 1000, 1),
                "max_ms": round(slowest * 1000, 1),
                "found": found,
                "has_more": False,
                "pages": pages,
                "total_s": round(total, 2),
            }
        )
    return rows


async def run(kafka: KafkaSettings, redis_url: str, sizes: list[int], repeat: int) -> list[Any]:
    rows: list[dict[str, Any]] = []
    for count in sizes:
        names = TopicNames(f"ba{uuid.uuid4().hex[:6]}.")
        settings = Settings(
            kafka=kafka.model_copy(update={"topic_prefix": names.prefix}),
            redis=RedisSettings(url=redis_url),
        )
        settings = settings.model_copy(
            update={"admin": settings.admin.model_copy(update={"api_key": "aib_bench_admin"})}
        )
        await apply_topics(settings.kafka, catalogue(names, [], partitions=1))
        seconds = await fill(settings.kafka, names.audit, count)
        print(f"{count} entries written in {seconds:.1f} s ({count / seconds:,.0f}/s)", flush=True)
        async with ingress(settings) as url:
            found = await measure(url, "aib_bench_admin", count, repeat)
        for row in found:
            print(row, flush=True)
        rows += [row | {"fill_s": round(seconds, 1)} for row in found]
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| entries | query | median ms a call | slowest ms | found | pages | has_more |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['entries']:,} | {r['query']} | {r['median_ms']} | {r['max_ms']} | {r['found']}"
            f" | {r.get('pages', 1)} | {r['has_more']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--engine", choices=["apache", "tansu"], default="apache")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    with contextlib.ExitStack() as ctx:
        bootstrap = os.environ.get("AIBROKER_KAFKA_BOOTSTRAP")
        if bootstrap:
            kafka = KafkaSettings(bootstrap=bootstrap)
        elif args.engine == "apache":
            dev = DevSettings()
            libs = apache_kafka.kafka_libs(dev.kafka_version, dev.kafka_cache)
            nodes = ctx.enter_context(
                apache_kafka.running(apache_kafka.plan(libs, workdir / "kafka", 1), workdir)
            )
            kafka = KafkaSettings(bootstrap=nodes.bootstrap, engine="kafka")
        else:
            tansu = ctx.enter_context(embedded.tansu(workdir))
            kafka = KafkaSettings(bootstrap=tansu.url, engine="tansu")
        redis_url = (
            os.environ.get("AIBROKER_REDIS_URL")
            or ctx.enter_context(embedded.redis_server(workdir)).url
        )
        rows = asyncio.run(run(kafka, redis_url, sizes, args.repeat))
    out = Path("loadtest/results/audit.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()
