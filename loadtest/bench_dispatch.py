"""What the dispatcher adds to a request: its hop against a forwarder's, same run, same rate.

    python -m loadtest.bench_dispatch [--rate 1000] [--seconds 10]

Envelopes are written to the interactive lane at a fixed rate (open loop) and read back from
`mock`'s dispatch topic; each one's latency is arrival minus its `created_at`. Twice: through
a forwarder (the same worker runtime, records passed on unchanged: the baseline, measured
before and after) and through the real dispatcher (decode, tenant and quota in Redis, routing,
encode). The dispatcher's cost is the difference of the medians. Writes
loadtest/results/dispatch.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis

from aibroker.kafka.clients import make_consumer, make_producer
from aibroker.limits import Limits
from aibroker.signing import Signer, signature_header
from aibroker.stores.tenants import RedisTenantStore, Tenant
from loadtest.doc_tables import doc_page, update_docs
from loadtest.driver import Run
from loadtest.procs import cpu_seconds
from loadtest.stack import Stack, bench_stack
from topics.catalog import TopicNames


async def drive(stack: Stack, rate: float, seconds: float) -> Run:
    """Send `rate` envelopes a second for `seconds`; the latency of each one that came out."""
    names = TopicNames(stack.prefix)
    kafka = stack.kafka
    out = make_consumer(kafka, names.dispatch("mock"), group_id=None, auto_offset_reset="latest")
    producer = make_producer(kafka, linger_ms=1)
    await out.start()
    await producer.start()
    run = Run()
    total = int(rate * seconds)
    try:
        await out.getmany(timeout_ms=500)  # assigned and positioned at the end
        await asyncio.sleep(1.0)
        receiver = asyncio.create_task(_receive(out, run, total))
        started = time.monotonic()
        sends = []
        for i in range(total):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            value = _envelope()
            signed = [signature_header(value, stack.producer_secret, Signer.TENANT)]
            sends.append(
                await producer.send(names.requests_interactive, value, key=None, headers=signed)
            )
        await asyncio.gather(*sends)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver, 30)
        run.elapsed_s = time.monotonic() - started
        run.errors = total - len(run.latencies)
    finally:
        await producer.stop()
        await out.stop()
    return run


def _envelope() -> bytes:
    return orjson.dumps(
        {
            "v": 1,
            "id": f"req_{uuid.uuid4().hex}",
            "tenant": "bench",
            "kind": "chat",
            "model": "mock/echo",
            "body": {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]},
            "mode": "async",
            "created_at": time.time(),
        }
    )


async def _receive(consumer: Any, run: Run, total: int) -> None:
    while len(run.latencies) < total:
        batch = await consumer.getmany(timeout_ms=1000)
        now = time.time()
        for records in batch.values():
            run.latencies += [now - orjson.loads(r.value)["created_at"] for r in records]


async def _limit_tenant(stack: Stack) -> None:
    """Limits far above the rate: every quota script runs, none refuses."""
    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        big = Limits(rpm=10_000_000, tpm=10_000_000_000, concurrency=1_000_000)
        await RedisTenantStore(redis).put(Tenant(name="bench", limits=big))
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="aibroker dispatcher overhead benchmark")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/dispatch.json"))
    parser.add_argument("--update-docs", type=doc_page("bench-dispatch"), metavar="PAGE")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="aibroker-bench-dispatch-"))
    pids: dict[str, int] = {}
    runs: dict[str, Run] = {}
    cpu_ms: dict[str, float] = {}
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(ctx, workdir, pids, apis=("openai",), services=[])
        asyncio.run(_limit_tenant(stack))
        for phase, service in (
            ("forwarder (before)", "forwarder"),
            ("dispatcher", "dispatcher"),
            ("forwarder (after)", "forwarder"),
        ):
            stack.prefix = f"d{uuid.uuid4().hex[:8]}."  # fresh topics: no backlog from before
            stack.create_topics()
            stack.start_service(service)
            time.sleep(5)  # joined its group, partitions assigned
            pid = stack.procs[service].pid
            cpu_before = cpu_seconds(pid)
            runs[phase] = asyncio.run(drive(stack, args.rate, args.seconds))
            cpu_ms[phase] = (cpu_seconds(pid) - cpu_before) * 1000 / len(runs[phase].latencies)
            stack.kill(service, signal.SIGTERM)
    baseline = min(
        runs["forwarder (before)"].percentile(50), runs["forwarder (after)"].percentile(50)
    )
    added_ms = (runs["dispatcher"].percentile(50) - baseline) * 1000
    report = {
        "runs": {
            name: {**run.summary(), "cpu_ms_per_request": round(cpu_ms[name], 3)}
            for name, run in runs.items()
        },
        "dispatcher_added_p50_ms": round(added_ms, 2),
        "meta": {"rate": args.rate, "seconds": args.seconds, "cpus": os.cpu_count()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    text = table(report)
    print(text)
    if args.update_docs:
        update_docs(args.update_docs, text, marker="bench-dispatch")


def table(report: dict[str, Any]) -> str:
    rate = report["meta"]["rate"]
    rows = [
        f"Dispatcher hop at {rate:.0f} envelopes/s (open loop), against a forwarder that decides "
        "nothing:",
        "",
        "| path | delivered/s | p50 ms | p95 ms | p99 ms | lost | CPU ms/request |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in report["runs"].items():
        rows.append(
            f"| {name} | {s['throughput_rps']} | {s['p50_ms']} | {s['p95_ms']} | "
            f"{s['p99_ms']} | {s['errors']} | {s['cpu_ms_per_request']} |"
        )
    rows += ["", f"The dispatcher adds **{report['dispatcher_added_p50_ms']} ms** at p50."]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
