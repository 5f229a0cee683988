"""A small HTTP load driver (aiohttp): closed-loop concurrency, latency recorded per call."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Run:
    """Latencies (s) of the calls that got the expected status, and a count of the rest."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.latencies),
            "errors": self.errors,
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p95_ms": round(self.percentile(95) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "max_ms": round(max(self.latencies) * 1000, 2) if self.latencies else None,
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2)
            if self.latencies
            else None,
        }


async def closed_loop(
    url: str,
    body: Callable[[int], bytes],
    headers: dict[str, str],
    *,
    concurrency: int,
    duration_s: float | None = None,
    total: int | None = None,
    expect: int = 200,
    first_event: bool = False,
) -> Run:
    """`concurrency` workers send back to back until `duration_s` passes or `total` are sent.
    With `first_event`, the latency is to the first line of the answer (time to first token
    of a server-sent event stream)."""
    run = Run()
    counter = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    started = time.perf_counter()
    stop_at = started + duration_s if duration_s else float("inf")

    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:

        async def worker() -> None:
            nonlocal counter
            while time.perf_counter() < stop_at and (total is None or counter < total):
                counter += 1
                t0 = time.perf_counter()
                latency = None
                try:
                    async with session.post(url, data=body(counter)) as response:
                        if first_event:
                            await response.content.readline()
                            latency = time.perf_counter() - t0
                        await response.read()
                        ok = response.status == expect
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    run.latencies.append(latency or time.perf_counter() - t0)
                else:
                    run.errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed_s = time.perf_counter() - started
    return run
