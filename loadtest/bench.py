"""The walking-skeleton benchmark: the broker against the mock provider called directly, same run.

    python -m loadtest.bench [--latency-ms 50] [--seconds 15] [--concurrency 64]

Runs on Apache Kafka (one KRaft node from Maven's jars) and then on the embedded Tansu
(`--kafka` picks one), with the embedded Redis, unless AIBROKER_KAFKA_BOOTSTRAP /
AIBROKER_REDIS_URL are set; runs the broker as processes, and measures, each next to its
baseline measured on the same stack:
  1. latency at concurrency 1 (direct vs through the broker, sync);
  2. sustained sync throughput at a fixed concurrency (closed loop);
  3. async submit (202) throughput, with the pipeline working and with it paused (a burst
     absorbed by Kafka while the pools are busy: what the ingress alone accepts);
plus the CPU each process spent per request during (2), the ingress's RSS, and the CPU of the
idle stack afterwards.
Writes loadtest/results/bench.json, prints a Markdown table and, with --update-docs PAGE, puts
it between the page's bench markers (`make bench`: docs/performance/broker.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from loadtest import litellm_proxy
from loadtest.doc_tables import doc_page, report_engines
from loadtest.driver import Run, closed_loop
from loadtest.footprint import Footprint
from loadtest.procs import cpu_seconds, rss_mb, tree_cpu_seconds
from loadtest.stack import Stack, bench_stack


def chat_body(model: str, *, stream: bool = False) -> Any:
    def body(i: int) -> bytes:
        return orjson.dumps(
            {
                "model": model,
                "stream": stream,
                "messages": [{"role": "user", "content": f"request {i}"}],
            }
        )

    return body


def responses_body(model: str, **extra: Any) -> Any:
    def body(i: int) -> bytes:
        return orjson.dumps({"model": model, "input": f"request {i}", **extra})

    return body


async def measure_responses(
    stack: Stack, auth: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    """The Responses API: at concurrency 1 through the broker (translated to chat) beside the
    mock's own `/v1/responses` called directly; background submits per second beside the
    chat async submits (`Prefer: respond-async`) of the same run."""
    direct_url, broker_url = f"{stack.mock_url}/v1/responses", f"{stack.url}/v1/responses"
    direct_body, broker_body = responses_body("echo"), responses_body("mock/echo")
    await closed_loop(broker_url, broker_body, auth, concurrency=8, total=100)  # warm up
    n1 = args.serial_requests
    direct1 = await closed_loop(direct_url, direct_body, auth, concurrency=1, total=n1)
    broker1 = await closed_loop(broker_url, broker_body, auth, concurrency=1, total=n1)
    background = await closed_loop(
        broker_url,
        responses_body("mock/echo", background=True),
        auth,
        concurrency=args.concurrency,
        duration_s=args.seconds / 2,
    )
    return {"concurrency_1": _compare(direct1, broker1), "background_submit": background.summary()}


async def measure(
    stack: Stack,
    pids: dict[str, int],
    args: argparse.Namespace,
    litellm: litellm_proxy.Proxy | None = None,
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    direct_url = f"{stack.mock_url}/v1/chat/completions"
    broker_url = f"{stack.url}/v1/chat/completions"
    direct_body, broker_body = chat_body("echo"), chat_body("mock/echo")
    # Before any traffic: nothing queued anywhere, so this is what the stack costs at rest.
    report: dict[str, Any] = {"idle_cpu_percent": await idle_cpu(pids)}

    await closed_loop(broker_url, broker_body, auth, concurrency=8, total=300)  # warm up
    await closed_loop(direct_url, direct_body, auth, concurrency=8, total=300)

    n1 = args.serial_requests
    direct1 = await closed_loop(direct_url, direct_body, auth, concurrency=1, total=n1)
    broker1 = await closed_loop(broker_url, broker_body, auth, concurrency=1, total=n1)
    report["concurrency_1"] = _compare(direct1, broker1)

    direct_stream, broker_stream = (
        chat_body("echo", stream=True),
        chat_body("mock/echo", stream=True),
    )
    ttft_direct = await closed_loop(
        direct_url, direct_stream, auth, concurrency=1, total=n1, first_event=True
    )
    ttft_broker = await closed_loop(
        broker_url, broker_stream, auth, concurrency=1, total=n1, first_event=True
    )
    report["first_token_concurrency_1"] = _compare(ttft_direct, ttft_broker)

    c = args.concurrency
    direct = await closed_loop(
        direct_url, direct_body, auth, concurrency=c, duration_s=args.seconds
    )
    footprint = await Footprint.take(stack.bootstrap, stack.prefix, stack.redis_url)
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    driver_before = resource.getrusage(resource.RUSAGE_SELF)
    broker = await closed_loop(
        broker_url, broker_body, auth, concurrency=c, duration_s=args.seconds
    )
    driver_after = resource.getrusage(resource.RUSAGE_SELF)
    served = max(len(broker.latencies), 1)
    after = await Footprint.take(stack.bootstrap, stack.prefix, stack.redis_url)
    report["footprint_per_request"] = footprint.per_request(after, served)
    cpu = {
        name: round((cpu_seconds(pid) - cpu_before[name]) / served * 1000, 3)
        for name, pid in pids.items()
    }
    cpu["load driver"] = round(
        (
            (driver_after.ru_utime + driver_after.ru_stime)
            - (driver_before.ru_utime + driver_before.ru_stime)
        )
        / served
        * 1000,
        3,
    )
    report[f"concurrency_{c}"] = _compare(direct, broker)
    report["cpu_ms_per_request"] = cpu
    report["cpu_ms_per_request_broker"] = round(
        sum(v for k, v in cpu.items() if k not in ("mock", "load driver")), 3
    )
    if litellm is not None:
        report["litellm"] = await measure_litellm(litellm, direct1, broker1, broker, args)

    async_headers = {**auth, "Prefer": "respond-async"}

    async def submit_async() -> Run:
        return await closed_loop(
            broker_url,
            broker_body,
            async_headers,
            concurrency=c,
            duration_s=args.seconds / 2,
            expect=202,
        )

    report["async_submit"] = (await submit_async()).summary()
    report["responses"] = await measure_responses(stack, auth, args)
    # A burst while the pools are busy elsewhere: downstream paused, requests queue in Kafka.
    downstream = [pids[name] for name in ("dispatcher", "consumer", "results")]
    for pid in downstream:
        os.kill(pid, signal.SIGSTOP)
    try:
        burst = await submit_async()
    finally:
        for pid in downstream:
            os.kill(pid, signal.SIGCONT)
    report["async_submit_downstream_paused"] = burst.summary()
    report["ingress_rss_mb"] = round(rss_mb(pids["ingress"]), 1)
    return report


async def measure_litellm(
    proxy: litellm_proxy.Proxy, direct1: Run, broker1: Run, broker: Run, args: argparse.Namespace
) -> dict[str, Any]:
    """The same requests through the LiteLLM proxy (one worker), in front of the same mock."""
    auth = {"Authorization": f"Bearer {proxy.api_key}", "Content-Type": "application/json"}
    url, body = f"{proxy.url}/v1/chat/completions", chat_body(litellm_proxy.MODEL)
    await closed_loop(url, body, auth, concurrency=8, total=300)  # warm up
    serial = await closed_loop(url, body, auth, concurrency=1, total=args.serial_requests)
    before = tree_cpu_seconds(proxy.pid)
    loaded = await closed_loop(
        url, body, auth, concurrency=args.concurrency, duration_s=args.seconds
    )
    cpu = (tree_cpu_seconds(proxy.pid) - before) / max(len(loaded.latencies), 1) * 1000
    return {
        "concurrency_1": _compare(direct1, serial),
        f"concurrency_{args.concurrency}": loaded.summary(),
        "cpu_ms_per_request": round(cpu, 3),
        "broker_added_p50_vs_litellm_ms": round(
            (broker1.percentile(50) - serial.percentile(50)) * 1000, 2
        ),
        "broker_throughput_vs_litellm": round(broker.throughput / loaded.throughput, 3)
        if loaded.throughput
        else None,
    }


async def idle_cpu(pids: dict[str, int], seconds: float = 10.0) -> dict[str, float]:
    """Each process's CPU while nothing is asked of the stack (% of one core)."""
    await asyncio.sleep(3)  # start-up settles (group joins, first metadata)
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    await asyncio.sleep(seconds)
    used = {n: round((cpu_seconds(pid) - before[n]) / seconds * 100, 1) for n, pid in pids.items()}
    return {**used, "total": round(sum(used.values()), 1)}


def _compare(direct: Run, broker: Run) -> dict[str, Any]:
    d, b = direct.summary(), broker.summary()
    return {
        "direct": d,
        "broker": b,
        "added_p50_ms": round(b["p50_ms"] - d["p50_ms"], 2),
        "added_p99_ms": round(b["p99_ms"] - d["p99_ms"], 2),
        "throughput_ratio": round(b["throughput_rps"] / d["throughput_rps"], 3)
        if d["throughput_rps"]
        else None,
    }


def table(report: dict[str, Any], concurrency: int) -> str:
    c1, cn = report["concurrency_1"], report[f"concurrency_{concurrency}"]
    ft = report["first_token_concurrency_1"]
    rows = [
        "| measure | direct (baseline) | through the broker | broker vs baseline |",
        "| --- | --- | --- | --- |",
        f"| p50 latency, concurrency 1 | {c1['direct']['p50_ms']} ms | {c1['broker']['p50_ms']} ms "
        f"| +{c1['added_p50_ms']} ms |",
        f"| p99 latency, concurrency 1 | {c1['direct']['p99_ms']} ms | {c1['broker']['p99_ms']} ms "
        f"| +{c1['added_p99_ms']} ms |",
        f"| p50 time to first token (streaming), concurrency 1 | {ft['direct']['p50_ms']} ms "
        f"| {ft['broker']['p50_ms']} ms | +{ft['added_p50_ms']} ms |",
        f"| sync throughput, concurrency {concurrency} | {cn['direct']['throughput_rps']} req/s "
        f"| {cn['broker']['throughput_rps']} req/s | x{cn['throughput_ratio']} |",
        f"| p50 / p99 latency, concurrency {concurrency} | {cn['direct']['p50_ms']} / "
        f"{cn['direct']['p99_ms']} ms | {cn['broker']['p50_ms']} / {cn['broker']['p99_ms']} ms "
        f"| +{cn['added_p50_ms']} / +{cn['added_p99_ms']} ms |",
        f"| async submit (202), concurrency {concurrency} | — "
        f"| {report['async_submit']['throughput_rps']} req/s | — |",
        f"| async submit (202), downstream paused | — "
        f"| {report['async_submit_downstream_paused']['throughput_rps']} req/s | — |",
        f"| ingress RSS after the run | — | {report['ingress_rss_mb']} MB | — |",
    ]
    if (responses := report.get("responses")) is not None:
        r1, bg = responses["concurrency_1"], responses["background_submit"]
        rows += [
            f"| Responses API: p50 latency, concurrency 1 (vs the mock's own `/v1/responses`) "
            f"| {r1['direct']['p50_ms']} ms | {r1['broker']['p50_ms']} ms "
            f"| +{r1['added_p50_ms']} ms (chat: +{c1['added_p50_ms']} ms) |",
            f"| Responses API: background submits, concurrency {concurrency} "
            f"| {report['async_submit']['throughput_rps']} req/s (chat async submit) "
            f"| {bg['throughput_rps']} req/s | — |",
        ]
    if (lite := report.get("litellm")) is not None:
        l1, ln = lite["concurrency_1"]["broker"], lite[f"concurrency_{concurrency}"]
        rows += [
            f"| LiteLLM proxy (1 worker): p50 latency, concurrency 1 | {c1['direct']['p50_ms']} ms "
            f"| {l1['p50_ms']} ms (LiteLLM) | +{lite['concurrency_1']['added_p50_ms']} ms |",
            f"| LiteLLM proxy (1 worker): sync throughput, concurrency {concurrency} "
            f"| {ln['throughput_rps']} req/s (LiteLLM) | {cn['broker']['throughput_rps']} req/s "
            f"| broker x{lite['broker_throughput_vs_litellm']} LiteLLM's |",
        ]
    cpu = ", ".join(f"{k} {v} ms" for k, v in report["cpu_ms_per_request"].items())
    litellm_cpu = f", against {lite['cpu_ms_per_request']} ms in the LiteLLM proxy" if lite else ""
    idle = report["idle_cpu_percent"]
    resting = ", ".join(f"{k} {v} %" for k, v in idle.items() if k != "total")
    return (
        "\n".join(rows)
        + f"\n\nCPU per sync request: {report['cpu_ms_per_request_broker']} ms over the broker's "
        + f"processes (Kafka and Redis included; not the mock, not the driver){litellm_cpu}: "
        + f"{cpu}.\n\nIdle stack: {idle['total']} % of one core "
        + f"({resting}).\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="aibroker walking-skeleton benchmark")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serial-requests", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/bench.json"))
    parser.add_argument(
        "--kafka",
        choices=["tansu", "apache", "both"],
        default="both",
        help="the Kafka to run on (both: one after the other, each with its own baseline)",
    )
    parser.add_argument(
        "--litellm",
        type=Path,
        default=None,
        help="the `litellm` executable of the bench's own environment (Makefile: LITELLM_ENV): "
        "the same requests through the LiteLLM proxy, one worker",
    )
    parser.add_argument(
        "--update-docs",
        type=doc_page("bench"),
        default=None,
        metavar="PAGE",
        help="replace the table between the bench markers of this docs page",
    )
    args = parser.parse_args(argv)
    report_engines(args, run_on, table, marker="bench")


def run_on(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """One whole measurement on a fresh stack over `engine`."""
    workdir = Path(tempfile.mkdtemp(prefix=f"aibroker-bench-{engine}-"))
    pids: dict[str, int] = {}
    with contextlib.ExitStack() as stack_ctx:
        broker = bench_stack(
            stack_ctx,
            workdir,
            pids,
            engine=engine,
            mock_latency_ms=args.latency_ms,
            apis=("openai",),  # one provider, one dispatch topic for the external pool
        )
        proxy = (
            stack_ctx.enter_context(
                litellm_proxy.running(args.litellm, broker.mock_url, workdir / "litellm")
            )
            if args.litellm
            else None
        )
        started = time.time()
        report = asyncio.run(measure(broker, pids, args, proxy))
    report["meta"] = {
        "started": started,
        "mock_latency_ms": args.latency_ms,
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "kafka": engine if "AIBROKER_KAFKA_BOOTSTRAP" not in os.environ else "external",
    }
    return report


if __name__ == "__main__":
    main()
