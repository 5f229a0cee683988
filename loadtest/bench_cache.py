"""What the exact response cache buys: the same sync chat workload twice in one run, the first
pass answered by the provider (misses, stored), the second from the cache (hits, answered by
ingress).

    python -m loadtest.bench_cache [--kafka apache|tansu|both] [--prompts 400] [--serial 200]
        [--concurrency 32] [--mock-latency-ms 0] [--update-docs docs/guides/cache.md]

Deterministic (`temperature: 0`) `/v1/chat/completions` to the mock provider, each prompt
distinct. Latency at concurrency 1 (`--serial` prompts) and closed-loop throughput at
`--concurrency`, for misses then hits, and the ratios. Every answer's `x-aibroker-cache` is
checked: a pass whose answers are not all `miss` (then all `hit`) is reported as failed.
The baseline, measured in the same run as `loadtest.bench` does, is a direct call to the mock
provider (at 0 ms, as the broker's own is): a hit's "added" latency is its p50 minus that, what
the broker costs a caller on top of an HTTP call. Runs on Apache Kafka (the engine of record)
unless `--kafka` says otherwise; writes loadtest/results/bench_cache.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from loadtest.doc_tables import doc_page, report_engines
from loadtest.procs import cpu_seconds
from loadtest.stack import Stack, bench_stack


def prompts(n: int, model: str = "mock/echo") -> list[bytes]:
    run = uuid.uuid4().hex[:8]
    return [
        orjson.dumps(
            {
                "model": model,
                "messages": [{"role": "user", "content": f"bench {run} prompt {i}"}],
                "temperature": 0,
            }
        )
        for i in range(n)
    ]


async def send_all(
    stack: Stack, bodies: list[bytes], concurrency: int, expect: str, *, direct: bool = False
) -> dict[str, Any]:
    """Each body once, `concurrency` at a time; latencies, throughput and the cache marks.
    `direct`: to the mock provider itself (the baseline; its answers carry no mark)."""
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    url = f"{stack.mock_url if direct else stack.url}/v1/chat/completions"
    latencies: list[float] = []
    marks: dict[str, int] = {}
    queue = list(reversed(bodies))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                async with session.post(url, data=body) as answer:
                    await answer.read()
                    ok = answer.status == 200
                latencies.append(time.perf_counter() - started)
                mark = answer.headers.get("x-aibroker-cache", "none") if ok else "error"
                marks[mark] = marks.get(mark, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "requests": len(bodies),
        "rps": round(len(bodies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "marks": marks,
        "as_expected": marks == {expect: len(bodies)},
    }


async def with_cpu(pids: dict[str, int], requests: int, run: Any) -> dict[str, Any]:
    """`run`'s summary, with the CPU the broker's processes (Kafka and Redis included, not the
    mock) spent per request during it: on a machine shared with other work, what a request
    costs is steadier than how fast it went."""
    broker = {name: pid for name, pid in pids.items() if name != "mock"}
    before = {name: cpu_seconds(pid) for name, pid in broker.items()}
    row: dict[str, Any] = await run
    spent = {
        name: (cpu_seconds(pid) - before[name]) * 1000 / requests for name, pid in broker.items()
    }
    row["cpu_ms_per_request"] = round(sum(spent.values()), 3)
    row["cpu_ms_per_request_by_process"] = {name: round(ms, 3) for name, ms in spent.items()}
    return row


async def measure(stack: Stack, pids: dict[str, int], args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then at concurrency 1 and at `--concurrency`: the direct baseline, the misses,
    the same prompts again (hits)."""
    await send_all(stack, prompts(50), 8, "miss")  # warm: groups joined, connections open
    await send_all(stack, prompts(50, "echo"), 8, "none", direct=True)
    c = args.concurrency
    serial, loaded = prompts(args.serial), prompts(args.prompts)
    report: dict[str, Any] = {
        "direct_c1": await send_all(stack, prompts(args.serial, "echo"), 1, "none", direct=True),
        "miss_c1": await send_all(stack, serial, 1, "miss"),
        "hit_c1": await send_all(stack, serial, 1, "hit"),
        f"direct_c{c}": await send_all(
            stack, prompts(args.prompts, "echo"), c, "none", direct=True
        ),
        f"miss_c{c}": await with_cpu(pids, len(loaded), send_all(stack, loaded, c, "miss")),
        f"hit_c{c}": await with_cpu(pids, len(loaded), send_all(stack, loaded, c, "hit")),
    }
    hit, miss, direct1 = report[f"hit_c{c}"], report[f"miss_c{c}"], report["direct_c1"]
    report["ratios"] = {
        "hit_p50_added_ms_c1": round(report["hit_c1"]["p50_ms"] - direct1["p50_ms"], 2),
        "miss_p50_added_ms_c1": round(report["miss_c1"]["p50_ms"] - direct1["p50_ms"], 2),
        "hit_over_miss_p50_c1": round(report["hit_c1"]["p50_ms"] / report["miss_c1"]["p50_ms"], 3),
        "hit_over_miss_rps_c1": round(report["hit_c1"]["rps"] / report["miss_c1"]["rps"], 2),
        f"hit_over_miss_rps_c{c}": round(hit["rps"] / miss["rps"], 2),
        "miss_over_hit_cpu": round(miss["cpu_ms_per_request"] / hit["cpu_ms_per_request"], 2),
    }
    passes = [row for row in report.values() if "marks" in row]
    report["as_expected"] = all(row["as_expected"] for row in passes)
    report["cache_stats"] = await cache_stats(stack)
    return report


async def cache_stats(stack: Stack) -> dict[str, Any]:
    """`GET /admin/v1/cache/stats` after the passes: hits, misses and the dollars the hits
    saved (what the provider calls they replaced would have cost at the stack's prices)."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    url = f"{stack.url}/admin/v1/cache/stats"
    async with aiohttp.ClientSession(headers=headers) as session, session.get(url) as answer:
        answer.raise_for_status()
        stats: dict[str, Any] = await answer.json()
    rows = stats["data"]
    return {
        "hit": sum(row["hit"] for row in rows),
        "miss": sum(row["miss"] for row in rows),
        "saved_usd": str(sum(Decimal(row.get("saved_usd", "0")) for row in rows)),
    }


def table(report: dict[str, Any], concurrency: int) -> str:
    """The passes and the two ratios the goals are about, as Markdown."""
    rows = [
        "| pass | requests | throughput (req/s) | p50 (ms) | p99 (ms) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in (1, concurrency):
        for name, label in (
            ("direct", "direct to the mock (baseline)"),
            ("miss", "miss"),
            ("hit", "hit"),
        ):
            row = report[f"{name}_c{c}"]
            rows.append(
                f"| {label}, concurrency {c} | {row['requests']} | {row['rps']} "
                f"| {row['p50_ms']} | {row['p99_ms']} |"
            )
    ratios = report["ratios"]
    hit, miss = report[f"hit_c{concurrency}"], report[f"miss_c{concurrency}"]
    checked = (
        "Every answer carried the expected `x-aibroker-cache`"
        if report["as_expected"]
        else "**Some answers did not carry the expected `x-aibroker-cache`** (see the JSON)"
    )
    hit_added, miss_added = ratios["hit_p50_added_ms_c1"], ratios["miss_p50_added_ms_c1"]
    saved = report["cache_stats"]
    return (
        "\n".join(rows)
        + "\n\nHit p50 added over the direct call, concurrency 1: "
        + f"**{hit_added} ms** (a miss adds {miss_added} ms). "
        + f"Hit throughput over the miss path's, concurrency {concurrency}: "
        + f"**x{ratios[f'hit_over_miss_rps_c{concurrency}']}** "
        + f"(concurrency 1: x{ratios['hit_over_miss_rps_c1']}). CPU per request over the "
        + f"broker's processes (Kafka and Redis included): {miss['cpu_ms_per_request']} ms a miss, "
        + f"{hit['cpu_ms_per_request']} ms a hit (x{ratios['miss_over_hit_cpu']}; a hit: "
        + ", ".join(f"{k} {v} ms" for k, v in hit["cpu_ms_per_request_by_process"].items())
        + f"). {checked}.\n\n"
        + f"Shared counts after the run (`GET /admin/v1/cache/stats`): {saved['hit']} hits, "
        + f"{saved['miss']} misses, **${saved['saved_usd']} saved** (the cost of the provider "
        + "calls the hits replaced, at the mock's price of $0.50/$1.50 per million tokens).\n"
    )


def run_on(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """One whole measurement on a fresh stack over `engine`."""
    workdir = Path(tempfile.mkdtemp(prefix=f"aibroker-bench-cache-{engine}-"))
    pids: dict[str, int] = {}
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(
            ctx,
            workdir,
            pids,
            engine=engine,
            mock_latency_ms=args.mock_latency_ms,
            apis=("openai",),  # one provider, one dispatch topic for the external pool
            extra_env={"AIBROKER_CACHE_ENABLED": "true"},
        )
        started = time.time()
        report = asyncio.run(measure(stack, pids, args))
    report["meta"] = {
        "started": started,
        "mock_latency_ms": args.mock_latency_ms,
        "cpus": os.cpu_count(),
        "kafka": engine if "AIBROKER_KAFKA_BOOTSTRAP" not in os.environ else "external",
    }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--kafka",
        choices=["apache", "tansu", "both"],
        default="apache",
        help="the Kafka to run on (both: one after the other, each with its own baseline)",
    )
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("--serial", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--mock-latency-ms", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/bench_cache.json"))
    parser.add_argument(
        "--update-docs",
        type=doc_page("bench-cache"),
        default=None,
        metavar="PAGE",
        help="replace the table between the bench-cache markers of this docs page",
    )
    args = parser.parse_args(argv)
    report_engines(args, run_on, table, marker="bench-cache")


if __name__ == "__main__":
    main()
