"""What spill-over buys: embeddings throughput of the local all-MiniLM-L6-v2 pool alone, against
the same pool with a provider's embedding model behind it (`max_backlog`), in the same run.

    python -m loadtest.bench_spill [--seconds 20] [--concurrency 128] [--max-backlog 32]

The provider is the project's mock at 50 ms (an API's latency, none of its limits). Closed-loop
sync `/v1/embeddings` requests of one sentence; reports requests/s and latency for each alias,
the share each target served, and the gain. `--update-docs PAGE` puts the table between the
page's bench-spill markers (`make bench-local`: docs/performance/local-models.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson

from loadtest.bench_local import sentences
from loadtest.doc_tables import doc_page, update_docs
from loadtest.driver import closed_loop
from loadtest.stack import EMBEDDINGS_MODEL, Stack, bench_stack

PROVIDER_MODEL = "text-embedding-3-small"


def routes(max_backlog: int) -> str:
    return f"""
aliases:
  pool-only:
    - {{provider: embed, model: {EMBEDDINGS_MODEL}}}
  spill:
    - {{provider: embed, model: {EMBEDDINGS_MODEL}, max_backlog: {max_backlog}}}
    - {{provider: mock, model: {PROVIDER_MODEL}}}
"""


async def provider_calls(stack: Stack) -> int:
    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{stack.mock_url}/_stats")).json()
    return int(stats["calls_by_model"].get(PROVIDER_MODEL, 0))


async def measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    texts = sentences(2048)
    auth = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    url = f"{stack.url}/v1/embeddings"
    report: dict[str, Any] = {}
    for alias in ("pool-only", "spill"):

        def body(i: int, alias: str = alias) -> bytes:
            return orjson.dumps({"model": alias, "input": texts[i % len(texts)]})

        await closed_loop(url, body, auth, concurrency=8, total=200)  # warm up
        before = await provider_calls(stack)
        run = await closed_loop(
            url, body, auth, concurrency=args.concurrency, duration_s=args.seconds
        )
        summary = run.summary()
        served = max(len(run.latencies), 1)
        summary["provider_share"] = round((await provider_calls(stack) - before) / served, 3)
        report[alias] = summary
    report["gain"] = round(
        report["spill"]["throughput_rps"] / report["pool-only"]["throughput_rps"], 2
    )
    return report


def table(report: dict[str, Any], args: argparse.Namespace) -> str:
    rows = [
        "| alias | requests/s | p50 | p99 | served by the provider |",
        "| --- | --- | --- | --- | --- |",
    ]
    for alias, label in (
        ("pool-only", "local pool alone (baseline)"),
        ("spill", "pool, then the provider"),
    ):
        r = report[alias]
        rows.append(
            f"| {label} | {r['throughput_rps']} | {r['p50_ms']} ms | {r['p99_ms']} ms "
            f"| {round(r['provider_share'] * 100)} % |"
        )
    return (
        "\n".join(rows)
        + f"\n\nSpill-over: x{report['gain']} the pool alone (concurrency {args.concurrency}, "
        f"max_backlog {args.max_backlog}, provider at 50 ms).\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--max-backlog", type=int, default=32)
    parser.add_argument("--kafka", choices=["tansu", "apache"], default="apache")
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/bench_spill.json"))
    parser.add_argument("--update-docs", type=doc_page("bench-spill"), metavar="PAGE")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="aibroker-bench-spill-"))
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(
            ctx,
            workdir,
            {},
            engine=args.kafka,
            embeddings=True,
            apis=("openai",),
            mock_latency_ms=50,
            routes_yaml=routes(args.max_backlog),
        )
        report = asyncio.run(measure(stack, args))
    report["meta"] = {"kafka": args.kafka, "seconds": args.seconds, "concurrency": args.concurrency}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    text = table(report, args)
    print(text)
    if args.update_docs:
        update_docs(args.update_docs, text, marker="bench-spill")


if __name__ == "__main__":
    main()
