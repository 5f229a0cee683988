"""What Kafka transactions would cost a hop, on Apache Kafka: the consume -> produce -> commit
loop every aibroker service runs, as it is (idempotent producer, offsets committed by the
consumer every 200 ms) and with each commit window in a transaction (the outputs and the
offsets committed atomically: `send_offsets_to_transaction`).

    python -m loadtest.bench_txn [--records 5000] [--window-ms 200]

Starts one Apache Kafka node (Maven's jars) unless AIBROKER_KAFKA_BOOTSTRAP is set. Prints
records/s, the time to commit a window, and this process's CPU per record for both ways.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from aibroker.devstack import apache_kafka
from aibroker.kafka.clients import connection, make_consumer, running_producer
from aibroker.settings import DevSettings, KafkaSettings
from topics.apply import apply_topics
from topics.catalog import TopicSpec


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def relay(
    kafka: KafkaSettings, source: str, sink: str, n: int, window_s: float, *, txn: bool
) -> dict[str, Any]:
    """Read `n` records from `source`, write one output each to `sink`, commit every window."""
    group = f"bench-{uuid.uuid4().hex[:6]}"
    consumer = make_consumer(kafka, source, group_id=group, fetch_max_wait_ms=100)
    # aiokafka's own producer, the same options both ways (aibroker's has no transactions).
    options: dict[str, Any] = {"transactional_id": f"bench-{uuid.uuid4().hex[:6]}"} if txn else {}
    producer = AIOKafkaProducer(
        **connection(kafka), acks="all", enable_idempotence=True, linger_ms=0, **options
    )
    await consumer.start()
    await producer.start()
    done, commits = 0, []
    started, cpu = time.perf_counter(), _cpu()
    try:
        while done < n:
            window_end = time.perf_counter() + window_s
            if txn:
                await producer.begin_transaction()
            offsets = {}
            while time.perf_counter() < window_end and done < n:
                batches = await consumer.getmany(timeout_ms=50, max_records=500)
                for tp, records in batches.items():
                    sends = [await producer.send(sink, r.value, key=r.key) for r in records]
                    await asyncio.gather(*sends)
                    offsets[tp] = records[-1].offset + 1
                    done += len(records)
            t = time.perf_counter()
            if txn:
                await producer.send_offsets_to_transaction(offsets, group)
                await producer.commit_transaction()
            elif offsets:
                await consumer.commit(offsets)
            commits.append(time.perf_counter() - t)
    finally:
        await producer.stop()
        await consumer.stop()
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    commits.sort()
    return {
        "records_per_s": round(n / elapsed),
        "commit_p50_ms": round(commits[len(commits) // 2] * 1000, 2),
        "commit_p99_ms": round(commits[int(len(commits) * 0.99)] * 1000, 2),
        "cpu_us_per_record": round(cpu / n * 1e6, 1),
    }


async def measure(kafka: KafkaSettings, n: int, window_s: float) -> dict[str, Any]:
    report = {}
    for txn in (False, True):
        source, sink = (f"bench.txn.{uuid.uuid4().hex[:6]}.{x}" for x in ("in", "out"))
        await apply_topics(kafka, [TopicSpec(t, 3, 3_600_000, "k", (), ()) for t in (source, sink)])
        async with running_producer(kafka) as producer:
            sends = [await producer.send(source, b"x" * 300, key=str(i).encode()) for i in range(n)]
            await asyncio.gather(*sends)
        report["transactions" if txn else "as it is"] = await relay(
            kafka, source, sink, n, window_s, txn=txn
        )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--window-ms", type=float, default=200.0)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as ctx:
        if bootstrap := os.environ.get("AIBROKER_KAFKA_BOOTSTRAP"):
            kafka = KafkaSettings(bootstrap=bootstrap)
        else:
            dev = DevSettings()
            libs = apache_kafka.kafka_libs(dev.kafka_version, dev.kafka_cache)
            workdir = Path(tempfile.mkdtemp(prefix="aibroker-txn-"))
            nodes = ctx.enter_context(
                apache_kafka.running(apache_kafka.plan(libs, workdir, 1), workdir)
            )
            kafka = KafkaSettings(bootstrap=nodes.bootstrap)
        report = asyncio.run(measure(kafka, args.records, args.window_ms / 1000))
    for way, figures in report.items():
        print(f"{way}: {figures}")


if __name__ == "__main__":
    main()
