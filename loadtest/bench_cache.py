"""What the exact response cache buys: the same sync chat workload twice in one run, the first
pass answered by the provider (misses, stored), the second from the cache (hits).

    python -m loadtest.bench_cache [--kafka tansu|apache] [--prompts 400] [--concurrency 32]
        [--mock-latency-ms 0]

Deterministic (`temperature: 0`) `/v1/chat/completions` to the mock provider, each prompt
distinct. Latency at concurrency 1 (`--serial` prompts) and closed-loop throughput at
`--concurrency`, for misses then hits, and the ratios. Every answer's `x-aibroker-cache` is
checked: a pass whose answers are not all `miss` (then all `hit`) is reported as failed.
With a mock at 0 ms the miss path is the broker's whole cost, so the hit row shows what a
lookup adds or saves against it.
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
from typing import Any

import aiohttp
import orjson

from loadtest.stack import Stack, bench_stack


def prompts(n: int) -> list[bytes]:
    run = uuid.uuid4().hex[:8]
    return [
        orjson.dumps(
            {
                "model": "mock/echo",
                "messages": [{"role": "user", "content": f"bench {run} prompt {i}"}],
                "temperature": 0,
            }
        )
        for i in range(n)
    ]


async def send_all(
    stack: Stack, bodies: list[bytes], concurrency: int, expect: str
) -> dict[str, Any]:
    """Each body once, `concurrency` at a time; latencies, throughput and the cache marks."""
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    url = f"{stack.url}/v1/chat/completions"
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


async def measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    await send_all(stack, prompts(50), 8, "miss")  # warm: groups joined, connections open
    serial, loaded = prompts(args.serial), prompts(args.prompts)
    report = {
        "miss_c1": await send_all(stack, serial, 1, "miss"),
        "hit_c1": await send_all(stack, serial, 1, "hit"),
        f"miss_c{args.concurrency}": await send_all(stack, loaded, args.concurrency, "miss"),
        f"hit_c{args.concurrency}": await send_all(stack, loaded, args.concurrency, "hit"),
    }
    hit, miss = report[f"hit_c{args.concurrency}"], report[f"miss_c{args.concurrency}"]
    report["ratios"] = {
        "hit_p50_added_ms_c1": round(report["hit_c1"]["p50_ms"] - report["miss_c1"]["p50_ms"], 2),
        "hit_over_miss_p50_c1": round(report["hit_c1"]["p50_ms"] / report["miss_c1"]["p50_ms"], 3),
        "hit_over_miss_rps": round(hit["rps"] / miss["rps"], 2),
    }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kafka", choices=["tansu", "apache"], default="tansu")
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("--serial", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--mock-latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="aibroker-bench-cache-"))
    pids: dict[str, int] = {}
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(
            ctx,
            workdir,
            pids,
            engine=args.kafka,
            mock_latency_ms=args.mock_latency_ms,
            extra_env={"AIBROKER_CACHE_ENABLED": "true"},
        )
        report = asyncio.run(measure(stack, args))
    for name, row in report.items():
        print(f"{name}: {row}")


if __name__ == "__main__":
    main()
