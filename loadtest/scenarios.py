"""Open-loop scenarios through the whole broker, each next to the baseline measured in the same
run (the mock provider called directly at the same rate):

- sync chat (`POST /v1/chat/completions`, answer in the response);
- async + long-poll (`POST /v1/requests`, then `GET /v1/requests/{id}?wait=`);
- async + webhook (the same, the answer delivered, signed, to a receiver of this driver's);
- direct producers (`aibroker.client.KafkaProducer` writing envelopes to the requests topic;
  done when the result appears on the `results` topic).

Every scenario reports throughput, p50/p95/p99 end-to-end latency, the error rate and the
p50/p99 of the broker's own stages (queue, service) from the requests' status documents.
Writes loadtest/reports/scenarios.json and scenarios.png (latency distributions);
`--update-docs PAGE` refreshes the page's table and the plot beside it
(`make bench-scenarios`: docs/performance/scenarios.md). `make bench-all` runs this and the other
benchmarks (local models, dispatcher hop, batch files) in one go.

    python -m loadtest.scenarios [--rate 100] [--seconds 20] [--latency-ms 50]
                                 [--kafka tansu|apache] [--warm-seconds 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from aiohttp import web

from aibroker.client import KafkaProducer
from aibroker.devstack.embedded import free_port
from aibroker.kafka.clients import connection
from loadtest.bench import chat_body
from loadtest.doc_tables import doc_page, update_docs
from loadtest.driver import Run, closed_loop
from loadtest.stack import Stack, bench_stack
from schemas.envelopes import Kind, Status

REPORTS = Path(__file__).parent / "reports"
MODEL = "mock/echo"


@dataclass
class Outcome:
    run: Run = field(default_factory=Run)
    stages: dict[str, list[float]] = field(default_factory=lambda: {"queue": [], "service": []})

    def note_stages(self, doc: dict[str, Any]) -> None:
        for stage, key in (("queue", "queued_ms"), ("service", "service_ms")):
            if (ms := doc.get(key)) is not None:
                self.stages[stage].append(ms / 1000)

    def summary(self) -> dict[str, Any]:
        total = len(self.run.latencies) + self.run.errors
        stages = {
            f"{stage}_{q}_ms": round(Run(latencies=values).percentile(q) * 1000, 2)
            for stage, values in self.stages.items()
            if values
            for q in (50, 99)
        }
        return {
            **self.run.summary(),
            "error_rate": round(self.run.errors / total, 4) if total else None,
            **stages,
        }


async def open_loop(
    rate: float, seconds: float, one: Callable[[int], Coroutine[Any, Any, None]]
) -> float:
    """`one(i)` launched `rate` times a second for `seconds`, not waiting on each other; the
    elapsed time once all have finished."""
    started = time.monotonic()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return time.monotonic() - started


@dataclass
class Answer:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Http:
    """The driver's client: aiohttp, with the two calls used here. (It was httpx, whose pool
    costs more per call the more connections it holds: with a backlog the driver, not the
    broker, became the limit, and an open loop collapsed to a third of its rate.)"""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self._base = base_url.rstrip("/")
        connector = aiohttp.TCPConnector(limit=1000)
        timeout = aiohttp.ClientTimeout(total=60)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=headers or {}
        )

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._session.close()

    async def post(self, path: str, json: Any, headers: dict[str, str] | None = None) -> Answer:
        body = orjson.dumps(json)
        sent = {"Content-Type": "application/json", **(headers or {})}
        async with self._session.post(self._base + path, data=body, headers=sent) as answer:
            return Answer(answer.status, await answer.read())

    async def get(self, path: str, params: dict[str, Any]) -> Answer:
        query = {k: str(v) for k, v in params.items()}
        async with self._session.get(self._base + path, params=query) as answer:
            return Answer(answer.status, await answer.read())


def chat(i: int) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": f"request {i}"}]}


async def timed(outcome: Outcome, call: Awaitable[bool]) -> None:
    t0 = time.perf_counter()
    try:
        ok = await call
    except (aiohttp.ClientError, TimeoutError):
        ok = False
    if ok:
        outcome.run.latencies.append(time.perf_counter() - t0)
    else:
        outcome.run.errors += 1


async def baseline(stack: Stack, rate: float, seconds: float) -> Outcome:
    """The same chat calls straight to the mock provider."""
    async with Http(stack.mock_url) as client:
        return await sync_chat(stack, client, rate, seconds)


async def sync_chat(stack: Stack, client: Http, rate: float, s: float) -> Outcome:
    outcome = Outcome()

    async def call(i: int) -> bool:
        return (await client.post("/v1/chat/completions", json=chat(i))).status_code == 200

    outcome.run.elapsed_s = await open_loop(rate, s, lambda i: timed(outcome, call(i)))
    return outcome


async def long_poll(stack: Stack, client: Http, rate: float, s: float) -> Outcome:
    outcome = Outcome()

    async def call(i: int) -> bool:
        envelope = {"endpoint": "/v1/chat/completions", "body": chat(i)}
        accepted = await client.post("/v1/requests", json=envelope)
        if accepted.status_code != 202:
            return False
        url = f"/v1/requests/{accepted.json()['id']}"
        for _ in range(6):
            doc = (await client.get(url, params={"wait": 10})).json()
            if doc["status"] not in ("queued", "running"):
                outcome.note_stages(doc)
                return bool(doc["status"] == "succeeded")
        return False

    outcome.run.elapsed_s = await open_loop(rate, s, lambda i: timed(outcome, call(i)))
    return outcome


async def webhooks(stack: Stack, client: Http, rate: float, s: float) -> Outcome:
    """Latency: submission to the signed webhook's arrival at the receiver."""
    outcome = Outcome()
    arrived: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def receive(request: web.Request) -> web.Response:
        event = orjson.loads(await request.read())
        doc = event["data"]
        arrived.setdefault(doc["id"], asyncio.get_running_loop().create_future()).set_result(doc)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    hook = {"X-Aibroker-Webhook": f"http://127.0.0.1:{port}/hook"}
    try:

        async def call(i: int) -> bool:
            envelope = {"endpoint": "/v1/chat/completions", "body": chat(i)}
            accepted = await client.post("/v1/requests", json=envelope, headers=hook)
            if accepted.status_code != 202:
                return False
            request_id = accepted.json()["id"]
            future = arrived.setdefault(request_id, asyncio.get_running_loop().create_future())
            doc = await asyncio.wait_for(future, 60)
            outcome.note_stages(doc)
            return bool(doc["status"] == "succeeded")

        outcome.run.elapsed_s = await open_loop(rate, s, lambda i: timed(outcome, call(i)))
    finally:
        await runner.cleanup()
    return outcome


async def direct_producers(stack: Stack, client: Http, rate: float, s: float) -> Outcome:
    """Envelopes written straight to the requests topic by `aibroker.client.KafkaProducer` (a
    backend producer, signed with tenant-a's producer secret); done when the result is on
    `results`."""
    outcome = Outcome()
    producing = {"enable_idempotence": stack.kafka.producer_idempotent, "linger_ms": 1}
    async with KafkaProducer(
        tenant="tenant-a",
        secret=stack.producer_secret,
        prefix=stack.prefix,
        results=True,
        producer_options=producing,
        **connection(stack.kafka),
    ) as producer:

        async def call(i: int) -> bool:
            async with asyncio.timeout(60):
                result = await producer.run(Kind.CHAT, chat(i))
            outcome.note_stages(result.model_dump(mode="json"))
            return result.status is Status.SUCCEEDED

        outcome.run.elapsed_s = await open_loop(rate, s, lambda i: timed(outcome, call(i)))
    return outcome


SCENARIOS = {
    "sync chat": sync_chat,
    "async + long-poll": long_poll,
    "async + webhook": webhooks,
    "direct producers": direct_producers,
}


async def prepare_webhooks(stack: Stack) -> None:
    """tenant-a gets a webhook secret (webhooks need one)."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=f"{stack.url}/admin/v1", headers=headers) as admin:
        secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        answer = await admin.put("/tenants/tenant-a", json={"webhook_secrets": [secret]})
        answer.raise_for_status()


async def measure(
    stack: Stack, rate: float, seconds: float, warm_s: float = 0
) -> dict[str, dict[str, Any]]:
    await prepare_webhooks(stack)
    if warm_s:
        auth = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
        url = f"{stack.url}/v1/chat/completions"
        await closed_loop(url, chat_body("mock/echo"), auth, concurrency=16, duration_s=warm_s)
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with Http(stack.url, headers) as client:
        for i in range(20):  # warm: keys cached, every consumer assigned
            await client.post("/v1/chat/completions", json=chat(i))
        report = {"baseline (mock direct)": (await baseline(stack, rate, seconds)).summary()}
        for name, scenario in SCENARIOS.items():
            report[name] = (await scenario(stack, client, rate, seconds)).summary()
            print(f"{name}: {report[name]}", flush=True)
    return report


def table(
    report: dict[str, dict[str, Any]], rate: float, latency_ms: float, kafka: str = "tansu"
) -> str:
    base = report["baseline (mock direct)"]["p50_ms"]
    engine = "Apache Kafka" if kafka == "apache" else "Tansu"
    rows = [
        f"Open loop at {rate:g} requests/s for each scenario on {engine}, mock provider at "
        f"{latency_ms:g} ms; the last column is the scenario's p50 minus the baseline's.",
        "",
        "| scenario | req/s | p50 | p95 | p99 | errors | queue p50 / p99 | service p50 "
        "| p50 over baseline |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report.items():
        queue = f"{r['queue_50_ms']} / {r['queue_99_ms']} ms" if "queue_50_ms" in r else "—"
        service = f"{r['service_50_ms']} ms" if "service_50_ms" in r else "—"
        over = "—" if name.startswith("baseline") else f"+{r['p50_ms'] - base:.1f} ms"
        rows.append(
            f"| {name} | {r['throughput_rps']} | {r['p50_ms']} ms | {r['p95_ms']} ms "
            f"| {r['p99_ms']} ms | {r['error_rate']} | {queue} | {service} | {over} |"
        )
    return "\n".join(rows) + "\n"


def plot(report: dict[str, dict[str, Any]], path: Path, rate: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for q, marker in ((50, "o"), (95, "s"), (99, "^")):
        ax.scatter(names, [report[n][f"p{q}_ms"] for n in names], marker=marker, label=f"p{q}")
    ax.set_yscale("log")
    ax.set_ylabel("end-to-end latency (ms, log)")
    ax.set_title(f"Scenarios at {rate:g} req/s (open loop) vs the mock called directly")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    plt.setp(ax.get_xticklabels(), rotation=15, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--kafka", choices=["tansu", "apache"], default="tansu")
    parser.add_argument(
        "--warm-seconds",
        type=float,
        default=0,
        help="closed-loop load before measuring (a JVM broker compiles its hot paths)",
    )
    parser.add_argument("--update-docs", type=doc_page("bench-scenarios"), metavar="PAGE")
    args = parser.parse_args()
    env = {
        "AIBROKER_WEBHOOKS_ALLOW_HTTP": "true",
        "AIBROKER_WEBHOOKS_ALLOW": '["127.0.0.0/8"]',
    }
    with tempfile.TemporaryDirectory(prefix="aib-scen-") as tmp, contextlib.ExitStack() as ctx:
        pids: dict[str, int] = {}
        stack = bench_stack(
            ctx,
            Path(tmp),
            pids,
            engine=args.kafka,
            mock_latency_ms=args.latency_ms,
            extra_env=env,
        )
        report = asyncio.run(measure(stack, args.rate, args.seconds, args.warm_seconds))
    REPORTS.mkdir(exist_ok=True)
    result = {"rate": args.rate, "seconds": args.seconds, "latency_ms": args.latency_ms}
    (REPORTS / "scenarios.json").write_text(json.dumps({**result, "report": report}, indent=1))
    plot(report, REPORTS / "scenarios.png", args.rate)
    text = table(report, args.rate, args.latency_ms, args.kafka)
    print(text)
    if args.update_docs:
        update_docs(args.update_docs, text, marker="bench-scenarios")
        shutil.copyfile(
            REPORTS / "scenarios.png", args.update_docs.parent / "img" / "scenarios.png"
        )


if __name__ == "__main__":
    main()
