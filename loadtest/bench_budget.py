"""Where a request's time goes: the latency budget of a sync chat request and of an async
submit at concurrency 1, stage by stage, read from the broker's own spans.

    python -m loadtest.bench_budget [--kafka apache|tansu|both] [--requests 200]
        [--update-docs docs/performance/budget.md]

The stack runs with tracing on at 100 % (OTLP/HTTP to a collector this process runs, batch
span export every 100 ms, the exporter's own cost included in what is measured). Requests go
one at a time to the mock provider at 0 ms after a warm-up; each one's trace is cut into the
stages of `loadtest.budget` and the table gives p50 and p90 per stage. The baseline, in the same
run: the mock called directly, so "added" is the client's p50 less the mock's."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from loadtest import budget
from loadtest.doc_tables import ENGINE_NAMES, doc_page, report_engines
from loadtest.otlp import Collector
from loadtest.stack import Stack, bench_stack

CHAT = "/v1/chat/completions"


def chat(i: int) -> dict[str, Any]:
    return {"model": "mock/echo", "messages": [{"role": "user", "content": f"budget {i}"}]}


async def timed(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], status: int
) -> tuple[float, str]:
    started = time.perf_counter()
    answer = await client.post(url, json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != status:
        raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:200]}")
    return elapsed, answer.headers.get("x-request-id", "")


async def measure(stack: Stack, collector: Collector, n: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        for i in range(30):  # warm up: groups joined, connections open, caches warm
            await timed(client, f"{stack.url}{CHAT}", chat(i), 200)
        direct = [
            (await timed(client, f"{stack.mock_url}{CHAT}", chat(i), 200))[0] for i in range(n)
        ]
        sync = [await timed(client, f"{stack.url}{CHAT}", chat(i), 200) for i in range(n)]
        submits = [
            await timed(
                client, f"{stack.url}/v1/requests", {"endpoint": CHAT, "body": chat(i)}, 202
            )
            for i in range(n)
        ]
    await asyncio.sleep(2)  # the last batch of spans exported
    by_request = {s.request_id: s.trace_id for s in collector.spans if s.request_id}
    by_trace = budget.traces(collector.spans)

    def stages(ids: list[str], cut: Any) -> list[dict[str, float]]:
        out = []
        for request_id in ids:
            with contextlib.suppress(budget.Incomplete, KeyError):
                out.append(cut(by_trace[by_request[request_id]]))
        return out

    sync_stages = stages([rid for _, rid in sync], budget.sync_stages)
    async_stages = stages([rid for _, rid in submits], budget.async_stages)
    return {
        "direct_p50_ms": statistics.median(direct),
        "sync_p50_ms": statistics.median(t for t, _ in sync),
        "async_p50_ms": statistics.median(t for t, _ in submits),
        "sync": budget.percentiles(sync_stages),
        "async": budget.percentiles(async_stages),
        "traces": {"sync": len(sync_stages), "async": len(async_stages), "sent": n},
    }


def run_on(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"aibroker-bench-budget-{engine}-"))
    collector = Collector()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    try:
        with contextlib.ExitStack() as ctx:
            stack = bench_stack(ctx, workdir, {}, engine=engine, apis=("openai",), extra_env=env)
            return asyncio.run(measure(stack, collector, args.requests))
    finally:
        collector.close()


def table(report: dict[str, Any], _: int) -> str:
    def rows(stages: dict[str, dict[str, float]]) -> list[str]:
        return [f"| {name} | {v['p50']:.2f} | {v['p90']:.2f} |" for name, v in stages.items()]

    sync_total = sum(report["sync"][name]["p50"] for name in budget.SYNC_STAGES)
    lines = [
        f"Sync chat at concurrency 1: client p50 {report['sync_p50_ms']:.2f} ms, the mock "
        f"directly {report['direct_p50_ms']:.2f} ms, added "
        f"{report['sync_p50_ms'] - report['direct_p50_ms']:.2f} ms; the stages' p50s add up "
        f"to {sync_total:.2f} ms ({report['traces']['sync']} of {report['traces']['sent']} "
        "traces complete).",
        "",
        "| stage (sync chat) | p50 ms | p90 ms |",
        "| --- | --- | --- |",
        *rows(report["sync"]),
        "",
        f"Async submit (202) at concurrency 1: client p50 {report['async_p50_ms']:.2f} ms.",
        "",
        "| stage (async submit) | p50 ms | p90 ms |",
        "| --- | --- | --- |",
        *rows(report["async"]),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kafka", choices=["apache", "tansu", "both"], default="apache")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/bench_budget.json"))
    parser.add_argument(
        "--update-docs",
        type=doc_page("bench-budget"),
        default=None,
        metavar="PAGE",
        help="replace the table between the bench-budget markers of this docs page",
    )
    args = parser.parse_args(argv)
    report_engines(args, run_on, table, marker="bench-budget")
    if args.update_docs:
        reports = json.loads(args.out.read_text())
        plot(reports, args.update_docs.parent / "img" / "budget.png")


def plot(reports: dict[str, dict[str, Any]], path: Path) -> None:
    """One stacked bar per engine: the sync request's p50 stages, left to right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.6 * len(reports)))
    colours = plt.get_cmap("tab10")
    for row, report in enumerate(reports.values()):
        left = 0.0
        for i, name in enumerate(budget.SYNC_STAGES):
            width = max(report["sync"][name]["p50"], 0.0)
            label = name if row == 0 else None
            ax.barh(row, width, left=left, color=colours(i % 10), label=label)
            left += width
    ax.set_yticks(range(len(reports)), [ENGINE_NAMES[e] for e in reports])
    ax.set_xlabel("ms, p50 of each stage (sync chat, concurrency 1)")
    ax.legend(fontsize=7, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
