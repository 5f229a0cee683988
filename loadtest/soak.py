"""The soak: the broker at a steady rate for a long time (30 minutes by default) with a random
fault every few minutes, judged by the history checker, with every process watched.

    python -m loadtest.soak [--minutes 30] [--rate 20] [--fault-every-s 150]

Runs on its own Kafka (Tansu behind a proxy that can be cut) and Redis (append-only file), so
that both can go away as faults. Faults, in turn, in random order: the consumer pool
SIGKILLed, the dispatcher SIGTERMed, the results sink SIGKILLed, Redis down for 10 s, every
connection to the Kafka broker dropped and refused for 4 s, the provider failing 30 % of calls
for 20 s. Every 10 s it samples each process's RSS and open sockets and the consumer lag of
the main groups.

Reports (loadtest/reports/soak.json and soak.png): RSS growth of every process from the
first minutes after warm-up to the last (goal: < 10 %), the lag's peak after each fault and
the time it took to get back to its usual level, sockets at the start and end (no leak), and
the checker's verdict on every request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from aibroker.kafka.lag import lag_reader
from aibroker.routes import EXTERNAL_GROUP
from loadtest import faults
from loadtest.history import History, provider_calls, published_results
from loadtest.procs import rss_mb
from loadtest.stack import Stack
from topics.catalog import TopicNames

REPORTS = Path(__file__).parent / "reports"
"""Committed: the figures quoted in docs/operations/failure-drills.md come from these files."""
SAMPLE_S = 10.0
WATCHED_GROUPS = (
    ("requests.interactive", "aib-dispatcher"),
    ("dispatch.mock", EXTERNAL_GROUP),
    ("results", "aib-results"),
)


def sockets(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return sum(1 for fd in fds.iterdir() if fd.readlink().name.startswith("socket:"))
    except OSError:
        return 0


@dataclass
class Soak:
    stack: Stack
    kafka: faults.CuttableKafka
    redis: faults.Restartable
    rate: float
    warmup_s: float = 120.0
    """No fault before this, and RSS growth is measured from here."""
    history: History = field(default_factory=lambda: History(model="mock/echo"))
    samples: list[dict[str, Any]] = field(default_factory=list)
    faults_done: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def pids(self) -> dict[str, int]:
        pids = {name: proc.pid for name, proc in self.stack.procs.items()}
        for server in (self.kafka.broker, self.kafka.proxy, self.redis):
            if server.process is not None:
                pids[server.name] = server.process.pid
        return pids

    async def traffic(self, client: httpx.AsyncClient, until: float) -> None:
        """Open loop at `rate`, one in four sync."""
        tasks: set[asyncio.Task[Any]] = set()
        i = 0
        while time.time() < until:
            task = asyncio.create_task(self.history.submit(client, sync=i % 4 == 0))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            await asyncio.sleep(1 / self.rate)
        await asyncio.gather(*tasks)

    async def sample(self, until: float) -> None:
        names = TopicNames(self.stack.prefix)
        async with lag_reader(self.stack.kafka) as lags:
            while time.time() < until:
                row: dict[str, Any] = {"t": round(time.time() - self.started, 1)}
                for name, pid in self.pids().items():
                    try:
                        row[f"rss.{name}"] = round(rss_mb(pid), 1)
                        row[f"sockets.{name}"] = sockets(pid)
                    except OSError:
                        pass
                try:
                    row["lag"] = sum(
                        [await lags.lag(f"{names.prefix}{t}", g) for t, g in WATCHED_GROUPS]
                    )
                except Exception:  # the broker is down right now: no reading
                    row["lag"] = None
                self.samples.append(row)
                await asyncio.sleep(SAMPLE_S)

    async def inject(self, until: float, every_s: float) -> None:
        menu: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("consumer SIGKILL", lambda: self.restart("consumer", signal.SIGKILL)),
            ("dispatcher SIGTERM", lambda: self.restart("dispatcher", signal.SIGTERM)),
            ("results SIGKILL", lambda: self.restart("results", signal.SIGKILL)),
            ("redis down 10 s", self.redis_outage),
            ("kafka gone 4 s", self.kafka_restart),
            ("provider 30% 500s for 20 s", self.provider_errors),
        ]
        await asyncio.sleep(self.warmup_s)
        while time.time() + every_s < until:
            random.shuffle(menu)
            for name, fault in menu:
                if time.time() + every_s >= until:
                    return
                at = round(time.time() - self.started, 1)
                in_flight = await self.provider_in_flight()
                await fault()
                self.faults_done.append({"fault": name, "t": at, "in_flight": in_flight})
                print(f"[{at:7.1f}s] {name}", flush=True)
                await asyncio.sleep(every_s)

    async def provider_in_flight(self) -> int:
        async with httpx.AsyncClient(base_url=self.stack.mock_url) as mock:
            return int((await mock.get("/_stats")).json()["in_flight"])

    async def restart(self, service: str, sig: signal.Signals) -> None:
        await asyncio.to_thread(self.stack.kill, service, sig)
        await asyncio.sleep(1)
        self.stack.start_service(service)

    async def redis_outage(self) -> None:
        self.redis.stop(kill=True)
        await asyncio.sleep(10)
        await asyncio.to_thread(self.redis.start)

    async def kafka_restart(self) -> None:
        self.kafka.cut()
        await asyncio.sleep(4)
        await asyncio.to_thread(self.kafka.mend)

    async def provider_errors(self) -> None:
        async with httpx.AsyncClient(base_url=self.stack.mock_url) as mock:
            await mock.post("/_control", json={"error_rate": 0.3, "error_status": 500})
            await asyncio.sleep(20)
            await mock.post("/_control", json={})


def report(soak: Soak, broken: list[str]) -> dict[str, Any]:
    samples = [s for s in soak.samples if s["t"] >= soak.warmup_s]
    window = max(len(samples) // 6, 1)
    growth: dict[str, float] = {}
    for key in sorted({k for s in samples for k in s if k.startswith("rss.")}):
        values = [s[key] for s in samples if key in s]
        if len(values) >= 2 * window:
            first, last = statistics.mean(values[:window]), statistics.mean(values[-window:])
            growth[key.removeprefix("rss.")] = round((last - first) / first * 100, 1)
    # Under steady traffic the lag is never quite zero (offsets are committed every 200 ms):
    # "back" is back under twice its usual level (and at least 20 records).
    readings = [s["lag"] for s in soak.samples if s.get("lag") is not None]
    steady = max(2 * statistics.median(readings), 20) if readings else 20
    recovery = []
    for fault in soak.faults_done:
        after = [s for s in soak.samples if s["t"] > fault["t"] and s.get("lag") is not None]
        peak = max((s["lag"] for s in after[:6]), default=None)
        back = next((s["t"] for s in after if s["lag"] <= steady), None)
        since = round(back - fault["t"], 1) if back else None
        recovery.append({**fault, "lag_peak": peak, "lag_back_after_s": since})
    first, last = (samples or soak.samples)[0], soak.samples[-1]  # sockets: after warm-up
    socket_keys = sorted(k for k in last if k.startswith("sockets."))
    return {
        "minutes": round((time.time() - soak.started) / 60, 1),
        "rate_per_s": soak.rate,
        "history": soak.history.summary(),
        "violations": broken[:50],
        "rss_growth_pct": growth,
        "steady_lag": steady,
        "faults": recovery,
        "sockets": {k.removeprefix("sockets."): [first.get(k), last[k]] for k in socket_keys},
        "samples": soak.samples,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    minutes = [s["t"] / 60 for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for key in sorted({k for s in samples for k in s if k.startswith("rss.")}):
        top.plot(minutes, [s.get(key) for s in samples], label=key.removeprefix("rss."))
    top.set_ylabel("RSS (MB)")
    top.legend(fontsize=7, ncol=3)
    top.set_title(f"Soak: {result['rate_per_s']:g} req/s, a fault every few minutes")
    bottom.plot(minutes, [s.get("lag") for s in samples], color="black")
    bottom.set_ylabel("consumer lag (records)")
    bottom.set_xlabel("minutes")
    for fault in result["faults"]:
        for axis in (top, bottom):
            axis.axvline(fault["t"] / 60, color="red", alpha=0.3)
        bottom.annotate(
            fault["fault"], (fault["t"] / 60, 0), rotation=90, fontsize=7, va="bottom", color="red"
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def run(
    minutes: float, rate: float, every_s: float, warmup_s: float, workdir: Path
) -> dict[str, Any]:
    kafka, redis = faults.cuttable_kafka(workdir / "kafka"), faults.redis(workdir / "redis")
    kafka.start()
    redis.start()
    stack = Stack(kafka.settings, faults.redis_url(redis), workdir / "stack")
    stack.start()
    soak = Soak(stack, kafka, redis, rate, warmup_s)
    try:
        until = time.time() + minutes * 60
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=90) as client:
            await asyncio.gather(
                soak.traffic(client, until), soak.sample(until), soak.inject(until, every_s)
            )
            await asyncio.sleep(SAMPLE_S)
            await soak.history.settle(client, timeout_s=300)
        broken = soak.history.check(
            provider_calls=await provider_calls(stack.mock_url),
            published=await published_results(stack.kafka, TopicNames(stack.prefix).results),
            # A SIGKILLed pool or a restarted broker may redo what was in flight then.
            in_flight_at_fault=sum(f["in_flight"] for f in soak.faults_done),
        )
        return report(soak, broken)
    finally:
        stack.stop()
        redis.stop()
        kafka.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20, help="requests per second")
    parser.add_argument("--fault-every-s", type=float, default=150)
    parser.add_argument("--warmup-s", type=float, default=120)
    args = parser.parse_args()
    REPORTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aib-soak-") as tmp:
        result = asyncio.run(
            run(args.minutes, args.rate, args.fault_every_s, args.warmup_s, Path(tmp))
        )
    (REPORTS / "soak.json").write_text(json.dumps(result, indent=1))
    plot(result, REPORTS / "soak.png")
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
