"""One Kafka hop, alone: what a sync request pays three times (lane, dispatch, reply).

    python -m loadtest.bench_hop [--kafka apache] [--records 300]

Writes one record at a time with the broker's producer settings (acks=all, idempotent where
the engine allows) and reads it back with the broker's consumer settings, each with a random
key over 3 partitions, as the services do. Reports the produce acknowledgement and the whole
hop (write to read), p50/p99, on an otherwise idle stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from aibroker.devstack import apache_kafka, embedded
from aibroker.kafka.clients import make_consumer, make_producer
from aibroker.settings import DevSettings, KafkaSettings
from topics.apply import apply_topics
from topics.catalog import TopicSpec


async def hops(kafka: KafkaSettings, records: int) -> dict[str, float]:
    topic = f"hop{uuid.uuid4().hex[:6]}"
    await apply_topics(kafka, [TopicSpec(topic, 3, 60_000, "id", (), ())])
    producer = make_producer(kafka)
    consumer = make_consumer(kafka, topic, group_id=f"g-{topic}")
    await producer.start()
    await consumer.start()
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def read() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            for part in batch.values():
                for _ in part:
                    arrived.put_nowait(time.perf_counter())

    reader = asyncio.create_task(read())
    try:
        for _ in range(50):  # warm up: group joined, connections and JIT warm
            await producer.send_and_wait(topic, b"w", key=uuid.uuid4().bytes)
            await arrived.get()
        acks, whole = [], []
        for _ in range(records):
            started = time.perf_counter()
            await producer.send_and_wait(topic, b"x", key=uuid.uuid4().bytes)
            acks.append(time.perf_counter() - started)
            whole.append(await arrived.get() - started)
    finally:
        reader.cancel()
        await consumer.stop()
        await producer.stop()
    return {
        "ack_p50_ms": _ms(statistics.median(acks)),
        "ack_p99_ms": _ms(sorted(acks)[int(len(acks) * 0.99)]),
        "hop_p50_ms": _ms(statistics.median(whole)),
        "hop_p99_ms": _ms(sorted(whole)[int(len(whole) * 0.99)]),
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kafka", choices=["tansu", "apache"], default="apache")
    parser.add_argument("--records", type=int, default=300)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="aibroker-bench-hop-"))
    with contextlib.ExitStack() as ctx:
        if args.kafka == "apache":
            dev = DevSettings()
            libs = apache_kafka.kafka_libs(dev.kafka_version, dev.kafka_cache)
            nodes = ctx.enter_context(
                apache_kafka.running(apache_kafka.plan(libs, workdir / "kafka", 1), workdir)
            )
            kafka = KafkaSettings(bootstrap=nodes.bootstrap, engine="kafka")
        else:
            tansu = ctx.enter_context(embedded.tansu(workdir))
            kafka = KafkaSettings(bootstrap=tansu.url, engine="tansu")
        report = asyncio.run(hops(kafka, args.records))
    print(f"{args.kafka}: {report}")


if __name__ == "__main__":
    main()
