"""Batch throughput against the same work submitted as async requests, same run.

    python -m loadtest.bench_batch [--lines 10000] [--latency-ms 50]

For a chat batch (the mock provider at `--latency-ms`) and an embeddings batch
(all-MiniLM-L6-v2 on this machine's CPU), each of `--lines` lines: the time from
`POST /v1/batches` to `completed` (lines/s), and, as the baseline, the time for the same
requests submitted to `/v1/requests` by 64 concurrent clients until their last result is on
the `results` topic (requests/s). A ratio near 1 means the expander and the aggregator are not
what limits a batch: the provider or the model is. Writes loadtest/results/batch.json and prints
a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
import orjson

from aibroker.kafka.clients import make_consumer
from loadtest.doc_tables import doc_page, update_docs
from loadtest.driver import closed_loop
from loadtest.stack import EMBEDDINGS_MODEL, Stack, bench_stack
from topics.catalog import TopicNames

JOBS = {
    "chat (mock provider)": ("/v1/chat/completions", "mock/echo"),
    f"embeddings ({EMBEDDINGS_MODEL}, CPU)": ("/v1/embeddings", EMBEDDINGS_MODEL),
}


def body(endpoint: str, model: str, i: int) -> dict[str, Any]:
    if endpoint == "/v1/embeddings":
        return {"model": model, "input": f"line {i}: the quick brown fox jumps over the lazy dog"}
    return {"model": model, "messages": [{"role": "user", "content": f"line {i}"}]}


async def batch_rate(stack: Stack, endpoint: str, model: str, n: int) -> float:
    lines = [
        orjson.dumps(
            {
                "custom_id": f"l{i}",
                "method": "POST",
                "url": endpoint,
                "body": body(endpoint, model, i),
            }
        )
        for i in range(n)
    ]
    async with openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.api_key) as client:
        upload = io.BytesIO(b"\n".join(lines))
        uploaded = await client.files.create(file=("bench.jsonl", upload), purpose="batch")
        started = time.monotonic()
        batch = await client.batches.create(
            input_file_id=uploaded.id,
            endpoint=endpoint,  # type: ignore[arg-type]
            completion_window="24h",
        )
        while batch.status not in {"completed", "failed", "expired", "cancelled"}:
            await asyncio.sleep(0.2)
            batch = await client.batches.retrieve(batch.id)
        elapsed = time.monotonic() - started
    counts = batch.request_counts
    if batch.status != "completed" or counts is None or counts.completed != n:
        raise RuntimeError(f"the batch did not complete every line: {batch}")
    return n / elapsed


async def async_rate(stack: Stack, endpoint: str, model: str, n: int) -> float:
    names = TopicNames(stack.prefix)
    kafka = stack.kafka
    results = make_consumer(kafka, names.results, group_id=None, auto_offset_reset="latest")
    await results.start()
    try:
        await results.getmany(timeout_ms=500)
        seen: set[str] = set()
        started = time.monotonic()

        def submit(i: int) -> bytes:
            return orjson.dumps({"endpoint": endpoint, "body": body(endpoint, model, i)})

        headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
        sent = await closed_loop(
            f"{stack.url}/v1/requests", submit, headers, concurrency=64, total=n, expect=202
        )
        assert sent.errors == 0, sent.errors
        while len(seen) < n:
            batch = await results.getmany(timeout_ms=1000)
            for records in batch.values():
                seen.update(orjson.loads(r.value)["id"] for r in records)
        return n / (time.monotonic() - started)
    finally:
        await results.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="aibroker batch throughput benchmark")
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/batch.json"))
    parser.add_argument("--update-docs", type=doc_page("bench-batch"), metavar="PAGE")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="aibroker-bench-batch-"))
    report: dict[str, Any] = {"jobs": {}}
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(
            ctx,
            workdir,
            {},
            mock_latency_ms=args.latency_ms,
            apis=("openai",),
            embeddings=True,
            extra_env={"AIBROKER_BATCH_EXPAND_PER_S": "5000", "AIBROKER_BATCH_MAX_LINES": "100000"},
        )
        for name, (endpoint, model) in JOBS.items():
            baseline = asyncio.run(async_rate(stack, endpoint, model, args.lines))
            batch = asyncio.run(batch_rate(stack, endpoint, model, args.lines))
            report["jobs"][name] = {
                "lines": args.lines,
                "batch_lines_per_s": round(batch, 1),
                "async_requests_per_s": round(baseline, 1),
                "ratio": round(batch / baseline, 2),
            }
    report["meta"] = {"mock_latency_ms": args.latency_ms, "cpus": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    text = table(report)
    print(text)
    if args.update_docs:
        update_docs(args.update_docs, text, marker="bench-batch")


def table(report: dict[str, Any]) -> str:
    rows = [
        "| batch of | lines | batch lines/s | same work as async requests/s | ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, job in report["jobs"].items():
        rows.append(
            f"| {name} | {job['lines']} | {job['batch_lines_per_s']} | "
            f"{job['async_requests_per_s']} | x{job['ratio']} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
