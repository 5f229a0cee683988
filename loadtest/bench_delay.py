"""Waiting work at scale: retries keep their schedule while 100,000 records wait.

    python -m loadtest.bench_delay [--waiting 100000] [--rate 200] [--seconds 20]

Runs the dispatcher alone (on Apache Kafka by default) and drives its delay topics directly:
retries due 1-3 s after they are written, at a fixed rate (open loop), sent on to a topic this
benchmark reads. First alone (the baseline), then again after `--waiting` records due in an
hour (a quota wait of a large batch) were written to the delay topics. Reports, for each
run, how late the retries came out (arrival minus due), and the dispatcher's memory and
in-flight work, so the two can be compared in the same run. Writes
loadtest/results/delay.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from aibroker.kafka.clients import make_consumer, make_producer
from aibroker.kafka.publisher import DEST_HEADER, DUE_HEADER
from loadtest.doc_tables import doc_page, update_docs
from loadtest.driver import Run
from loadtest.procs import rss_mb
from loadtest.stack import Stack, bench_stack
from topics.apply import apply_topics
from topics.catalog import TopicNames, TopicSpec, delay_topic


async def retries(stack: Stack, dest: str, rate: float, seconds: float) -> Run:
    """Retries due 1-3 s after they are written; the lateness of each one that came out."""
    names = TopicNames(stack.prefix)
    out = make_consumer(stack.kafka, dest, group_id=None, auto_offset_reset="latest")
    producer = make_producer(stack.kafka, linger_ms=1)
    await out.start()
    await producer.start()
    run = Run()
    total = int(rate * seconds)
    try:
        await out.getmany(timeout_ms=500)  # assigned and positioned at the end
        receiver = asyncio.create_task(_lateness(out, run, total, deadline_s=seconds + 15))
        started = time.monotonic()
        sent = []
        for i in range(total):
            pause = started + i / rate - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            delay = random.uniform(1.0, 3.0)
            topic, due = names.retry(delay_topic(delay)), time.time() + delay
            value = orjson.dumps({"due": due})  # sent on unchanged: the due time travels in it
            headers = _headers(dest, due)
            sent.append(await producer.send(topic, value, key=f"r{i}".encode(), headers=headers))
        await asyncio.gather(*sent)
        await receiver
        run.elapsed_s = seconds
        run.errors = total - len(run.latencies)
    finally:
        await producer.stop()
        await out.stop()
    return run


async def _lateness(out: AIOKafkaConsumer, run: Run, total: int, deadline_s: float) -> None:
    give_up = time.monotonic() + deadline_s
    while len(run.latencies) < total and time.monotonic() < give_up:
        batch = await out.getmany(timeout_ms=200)
        now = time.time()
        for records in batch.values():
            for record in records:
                due = float(orjson.loads(record.value)["due"])
                run.latencies.append(max(now - due, 0.0))


async def fill(stack: Stack, dest: str, count: int) -> float:
    """`count` records due in an hour, written to the delay topics; seconds it took."""
    names = TopicNames(stack.prefix)
    producer = make_producer(stack.kafka, linger_ms=20)
    await producer.start()
    started = time.monotonic()
    try:
        due = time.time() + 3600
        pending = []
        for i in range(count):
            headers = _headers(dest, due + i / 1000)
            pending.append(
                await producer.send(
                    names.retry("10m"), b"{}", key=f"w{i}".encode(), headers=headers
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


def _headers(dest: str, due: float) -> list[tuple[str, bytes]]:
    return [(DUE_HEADER, f"{due:.3f}".encode()), (DEST_HEADER, dest.encode())]


def in_flight(stack: Stack) -> dict[str, float]:
    """The dispatcher's handlers in flight per worker, from its metrics."""
    text = httpx.get(f"http://127.0.0.1:{stack.metrics_ports['dispatcher']}/metrics").text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("aibroker_worker_in_flight{"):
            worker = line.split('worker="', 1)[1].split('"', 1)[0]
            found[worker] = float(line.rsplit(" ", 1)[1])
    return found


async def measure(stack: Stack, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    dest = f"{stack.prefix}bench.due"
    await apply_topics(stack.kafka, [TopicSpec(dest, 3, 3_600_000, "id", (), ())])
    await retries(stack, dest, args.rate, 3)  # warm up: groups joined, topics known
    report: dict[str, Any] = {"rss_mb_before": round(rss_mb(pid), 1)}
    report["retries_alone"] = (await retries(stack, dest, args.rate, args.seconds)).summary()
    report["fill_seconds"] = round(await fill(stack, dest, args.waiting), 1)
    await asyncio.sleep(5)  # the dispatcher reads up to the waiting records and pauses
    report["in_flight_with_waiting"] = in_flight(stack)
    report["rss_mb_with_waiting"] = round(rss_mb(pid), 1)
    beside = await retries(stack, dest, args.rate, args.seconds)
    report["retries_beside_waiting"] = beside.summary()
    report["rss_mb_after"] = round(rss_mb(pid), 1)
    return report


def table(report: dict[str, Any], args: argparse.Namespace) -> str:
    alone, beside = report["retries_alone"], report["retries_beside_waiting"]
    rows = [
        "| retries due in 1-3 s | sent on | late, p50 | p99 | max | lost |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, run in (("alone (baseline)", alone), (f"beside {args.waiting:,} waiting", beside)):
        lost = run["errors"]
        rows.append(
            f"| {name} | {run['requests']} | {run['p50_ms']} ms | {run['p99_ms']} ms "
            f"| {run.get('max_ms', '—')} ms | {lost} |"
        )
    busy = report["in_flight_with_waiting"]
    slots = ", ".join(f"{k.removeprefix('dispatcher.')} {int(v)}" for k, v in busy.items())
    return (
        "\n".join(rows)
        + f"\n\n{args.rate:g} retries/s for {args.seconds:g} s. {args.waiting:,} waiting records "
        f"written in {report['fill_seconds']} s. Dispatcher memory: {report['rss_mb_before']} MB "
        f"before, {report['rss_mb_with_waiting']} MB with them waiting, "
        f"{report['rss_mb_after']} MB after. Handlers in flight with them waiting: {slots}.\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kafka", choices=["tansu", "apache"], default="apache")
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/delay.json"))
    parser.add_argument("--update-docs", type=doc_page("bench-delay"), metavar="PAGE")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="aibroker-bench-delay-"))
    pids: dict[str, int] = {}
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(ctx, workdir, pids, engine=args.kafka, services=["dispatcher"])
        report = asyncio.run(measure(stack, pids["dispatcher"], args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    text = table(report, args)
    print(text)
    if args.update_docs:
        update_docs(args.update_docs, text, marker="bench-delay")


if __name__ == "__main__":
    main()
