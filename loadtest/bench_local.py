"""The local-model benchmark: embeddings and OCR through the broker against the same models
called directly, measured in the same run on the same machine.

    python -m loadtest.bench_local [--seconds 20] [--concurrency 64]

Baselines, in this process, before the broker is loaded:
  - embeddings: `SentenceTransformer.encode(texts, batch_size=32)` over the same texts, and
    the same model encoding one sentence a call;
  - OCR: RapidOCR over the same images, one after another.
Through the broker: closed-loop single-sentence `/v1/embeddings` requests and `/v1/ocr`
requests, with each pool's batch size, fill and queue wait read from its metrics.
Writes loadtest/results/bench_local.json and a Markdown table (--update-docs PAGE puts it
between the page's bench-local markers; `make bench-local`: docs/performance/local-models.md).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from loadtest.doc_tables import doc_page, update_docs
from loadtest.driver import closed_loop
from loadtest.procs import descendants, pin
from loadtest.stack import EMBEDDINGS_MODEL, OCR_MODEL, Stack, bench_stack

WORDS = [
    "broker",
    "queue",
    "result",
    "model",
    "batch",
    "token",
    "vector",
    "image",
    "text",
    "kafka",
    "redis",
    "pool",
]


def sentences(n: int) -> list[str]:
    """Distinct short sentences (8-16 words), the same every run."""
    out = []
    for i in range(n):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(8 + i % 9)]
        out.append(f"Sentence {i}: " + " ".join(words) + ".")
    return out


def images(n: int) -> list[bytes]:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=40)
    out = []
    for i in range(n):
        image = Image.new("RGB", (480, 120), "white")
        ImageDraw.Draw(image).text((20, 35), f"ORDER {1000 + i} PAID", fill="black", font=font)
        buf = io.BytesIO()
        image.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def direct_embeddings(texts: list[str], serial: int, threads: int = 0) -> dict[str, float]:
    from consumers.local.embeddings.engine import load_model

    model = load_model(EMBEDDINGS_MODEL, "cpu", threads)
    model.encode(texts[:64], batch_size=32, show_progress_bar=False)  # warm up
    started = time.perf_counter()
    model.encode(texts, batch_size=32, show_progress_bar=False)
    batched = len(texts) / (time.perf_counter() - started)
    latencies = []
    for text in texts[:serial]:
        t0 = time.perf_counter()
        model.encode([text], show_progress_bar=False)
        latencies.append(time.perf_counter() - t0)
    return {
        "batch32_per_s": round(batched, 1),
        "one_at_a_time_per_s": round(serial / sum(latencies), 1),
        "one_at_a_time_p50_ms": round(sorted(latencies)[len(latencies) // 2] * 1000, 2),
    }


def direct_ocr(pictures: list[bytes]) -> dict[str, float]:
    from consumers.local.ocr.engine import RapidOcrBackend
    from consumers.local.ocr.wire import decode_image

    backend = RapidOcrBackend()
    decoded = [decode_image(p, 10**8) for p in pictures]
    backend.recognise(decoded[:1])  # warm up
    started = time.perf_counter()
    for image in decoded:
        backend.recognise([image])
    return {"images_per_s": round(len(decoded) / (time.perf_counter() - started), 2)}


async def through_broker(
    stack: Stack, texts: list[str], pictures: list[bytes], args: argparse.Namespace
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    embed_url, ocr_url = f"{stack.url}/v1/embeddings", f"{stack.url}/v1/ocr"

    def embed_body(i: int) -> bytes:
        return orjson.dumps({"model": EMBEDDINGS_MODEL, "input": texts[i % len(texts)]})

    encoded = [base64.b64encode(p).decode() for p in pictures]

    def ocr_body(i: int) -> bytes:
        return orjson.dumps({"model": OCR_MODEL, "image": encoded[i % len(encoded)]})

    await closed_loop(embed_url, embed_body, auth, concurrency=8, total=200)  # warm up
    await closed_loop(ocr_url, ocr_body, auth, concurrency=1, total=2)
    report: dict[str, Any] = {}
    single = await closed_loop(embed_url, embed_body, auth, concurrency=1, total=200)
    report["embeddings_concurrency_1"] = single.summary()
    before = await pool_stats(stack, "embed", f"embed.{EMBEDDINGS_MODEL}")
    saturated = await closed_loop(
        embed_url, embed_body, auth, concurrency=args.concurrency, duration_s=args.seconds
    )
    report["embeddings_saturated"] = saturated.summary()
    report["embeddings_batching"] = delta(
        before, await pool_stats(stack, "embed", f"embed.{EMBEDDINGS_MODEL}")
    )
    before = await pool_stats(stack, "ocr", f"ocr.{OCR_MODEL}")
    ocr = await closed_loop(
        ocr_url, ocr_body, auth, concurrency=args.ocr_concurrency, duration_s=args.seconds
    )
    report["ocr_saturated"] = ocr.summary()
    report["ocr_batching"] = delta(before, await pool_stats(stack, "ocr", f"ocr.{OCR_MODEL}"))
    return report


async def pool_stats(stack: Stack, service: str, pool: str) -> dict[str, float]:
    """Sums and counts of the pool's batch histograms, from its metrics port."""
    port = stack.metrics_ports[service]
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    stats: dict[str, float] = {}
    for name in (
        "batch_items",
        "batch_fill_ratio",
        "batch_queue_wait_seconds",
        "model_call_seconds",
    ):
        for part in ("sum", "count"):
            prefix = f'aibroker_{name}_{part}{{pool="{pool}"}}'
            for line in text.splitlines():
                if line.startswith(prefix):
                    stats[f"{name}_{part}"] = float(line.split()[-1])
    return stats


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def mean(name: str) -> float:
        count = after.get(f"{name}_count", 0) - before.get(f"{name}_count", 0)
        total = after.get(f"{name}_sum", 0) - before.get(f"{name}_sum", 0)
        return total / count if count else float("nan")

    busy = after.get("model_call_seconds_sum", 0) - before.get("model_call_seconds_sum", 0)
    return {
        "model_calls": after.get("batch_items_count", 0) - before.get("batch_items_count", 0),
        "mean_batch_items": round(mean("batch_items"), 2),
        "mean_batch_fill": round(mean("batch_fill_ratio"), 3),
        "mean_queue_wait_ms": round(mean("batch_queue_wait_seconds") * 1000, 2),
        "mean_model_call_ms": round(mean("model_call_seconds") * 1000, 2),
        "model_busy_s": round(busy, 2),
    }


def table(report: dict[str, Any]) -> str:
    emb, ocr = report["direct"]["embeddings"], report["direct"]["ocr"]
    beside = report["direct_beside_idle_broker"]
    broker, ratios = report["broker"], report["ratios"]
    sat, one = broker["embeddings_saturated"], broker["embeddings_concurrency_1"]
    batching, ocr_b, ocr_sat = (
        broker["embeddings_batching"],
        broker["ocr_batching"],
        (broker["ocr_saturated"]),
    )
    added = round(one["p50_ms"] - emb["one_at_a_time_p50_ms"], 2)
    rows = [
        "| measure | direct (baseline) | through the broker | broker vs baseline |",
        "| --- | --- | --- | --- |",
        f"| embeddings/s: single-sentence requests at saturation vs `encode(batch_size=32)` "
        f"| {emb['batch32_per_s']} | {sat['throughput_rps']} "
        f"| x{ratios['embeddings_vs_batch32']} (goal ≥ 0.85) |",
        f"| the same vs `encode` one sentence a call | {emb['one_at_a_time_per_s']} "
        f"| {sat['throughput_rps']} | x{ratios['embeddings_vs_one_at_a_time']} (goal ≥ 1.8) |",
        f"| `encode(batch_size=32)` beside the idle broker | "
        f"{beside['embeddings']['batch32_per_s']} | — | — |",
        f"| embedding p50 latency, concurrency 1 | {emb['one_at_a_time_p50_ms']} ms "
        f"| {one['p50_ms']} ms | +{added} ms |",
        f"| embeddings batching at saturation | — | {batching['mean_batch_items']} texts a "
        f"call, fill {batching['mean_batch_fill']}, queue wait "
        f"{batching['mean_queue_wait_ms']} ms, model call {batching['mean_model_call_ms']} ms, "
        f"model busy {batching['model_busy_s']} s of {report['meta']['seconds']} s | — |",
        f"| OCR images/s (RapidOCR, one image a call) | {ocr['images_per_s']} "
        f"| {ocr_sat['throughput_rps']} | x{ratios['ocr']} (goal ≥ 0.8) |",
        f"| OCR images/s beside the idle broker | {beside['ocr']['images_per_s']} | — | — |",
        f"| OCR at saturation | — | {ocr_b['mean_batch_items']} images a call, model call "
        f"{ocr_b['mean_model_call_ms']} ms, queue wait {ocr_b['mean_queue_wait_ms']} ms | — |",
    ]
    if "dedicated_core" in report:
        dc = report["dedicated_core"]
        rows += [
            f"| dedicated core: embeddings/s vs `encode(batch_size=32)`, both one thread on "
            f"CPU 1 | {dc['direct']['batch32_per_s']} "
            f"| {dc['broker']['embeddings_saturated']['throughput_rps']} "
            f"| x{dc['ratios']['embeddings_vs_batch32']} (goal ≥ 0.85) |",
            f"| dedicated core: the same vs one sentence a call | "
            f"{dc['direct']['one_at_a_time_per_s']} "
            f"| {dc['broker']['embeddings_saturated']['throughput_rps']} "
            f"| x{dc['ratios']['embeddings_vs_one_at_a_time']} (goal ≥ 1.8) |",
            _busy_row("dedicated core: batching", dc, report),
        ]
    if "dedicated_core_thread" in report:
        th = report["dedicated_core_thread"]
        rows += [
            f"| dedicated core, the model a thread of the pool (`ISOLATE=false`) "
            f"| {th['direct']['batch32_per_s']} "
            f"| {th['broker']['embeddings_saturated']['throughput_rps']} "
            f"| x{th['ratios']['embeddings_vs_batch32']} |",
            _busy_row("the same: batching", th, report),
        ]
    return "\n".join(rows) + "\n"


def _busy_row(label: str, run: dict[str, Any], report: dict[str, Any]) -> str:
    """A dedicated-core run's batching: texts a model call, and how busy the model was."""
    batching = run["broker"]["embeddings_batching"]
    return (
        f"| {label} | — | {batching['mean_batch_items']} texts a call, "
        f"model busy {batching['model_busy_s']} s of {report['meta']['seconds']} s | — |"
    )


def dedicated_core(
    texts: list[str], args: argparse.Namespace, workdir: Path, *, isolate: bool = True
) -> dict[str, Any]:
    """The embeddings pool alone on CPU 1 (one torch thread), everything else on CPU 0; the
    baseline is the same model on CPU 1 with one thread. This isolates what the broker costs
    the model from what sharing its cores costs it, as a GPU or dedicated cores would.
    `isolate`: the model in a process of its own (the default), or a thread of the pool."""
    os.sched_setaffinity(0, {1})
    direct = direct_embeddings(texts, 100, threads=1)
    pin(os.getpid(), 0)
    pids: dict[str, int] = {}
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(
            ctx,
            workdir / ("pinned" if isolate else "pinned-thread"),
            pids,
            engine=args.kafka,
            embeddings=True,
            apis=("openai",),
            extra_env={
                "AIBROKER_EMBEDDINGS_THREADS": "1",
                "AIBROKER_EMBEDDINGS_ISOLATE": str(isolate).lower(),
            },
        )
        for pid in pids.values():
            pin(pid, 0)
        # The pool gets the dedicated core: its event loop and its model's own process
        # (AIBROKER_EMBEDDINGS_ISOLATE), which share it without sharing a GIL.
        for pid in [pids["embed"], *descendants(pids["embed"])]:
            pin(pid, 1)
        broker = asyncio.run(saturate_embeddings(stack, texts, args))
    rate = broker["embeddings_saturated"]["throughput_rps"]
    return {
        "direct": direct,
        "broker": broker,
        "ratios": {
            "embeddings_vs_batch32": round(rate / direct["batch32_per_s"], 3),
            "embeddings_vs_one_at_a_time": round(rate / direct["one_at_a_time_per_s"], 3),
        },
    }


async def saturate_embeddings(
    stack: Stack, texts: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    url = f"{stack.url}/v1/embeddings"

    def body(i: int) -> bytes:
        return orjson.dumps({"model": EMBEDDINGS_MODEL, "input": texts[i % len(texts)]})

    await closed_loop(url, body, auth, concurrency=8, total=200)  # warm up
    pool = f"embed.{EMBEDDINGS_MODEL}"
    before = await pool_stats(stack, "embed", pool)
    run = await closed_loop(url, body, auth, concurrency=args.concurrency, duration_s=args.seconds)
    return {
        "embeddings_saturated": run.summary(),
        "embeddings_batching": delta(before, await pool_stats(stack, "embed", pool)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="aibroker local-model benchmark")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--ocr-concurrency", type=int, default=8)
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument(
        "--embed-threads", type=int, default=0, help="AIBROKER_EMBEDDINGS_THREADS of the pool"
    )
    parser.add_argument(
        "--fetch-wait-ms",
        type=int,
        default=None,
        help="AIBROKER_KAFKA_FETCH_MAX_WAIT_MS of every process (default: the setting's)",
    )
    parser.add_argument(
        "--dedicated-core",
        action="store_true",
        help="also measure the embeddings pool alone on CPU 1, the rest on CPU 0 (Linux)",
    )
    parser.add_argument(
        "--kafka",
        choices=["tansu", "apache"],
        default="apache",
        help="the Kafka under the broker (Tansu's idle polling takes most of a core here)",
    )
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/bench_local.json"))
    parser.add_argument("--update-docs", type=doc_page("bench-local"), metavar="PAGE")
    args = parser.parse_args(argv)
    texts, pictures = sentences(args.texts), images(8)
    report: dict[str, Any] = {
        "direct": {"embeddings": direct_embeddings(texts, 200), "ocr": direct_ocr(pictures)}
    }
    workdir = Path(tempfile.mkdtemp(prefix="aibroker-bench-local-"))
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(
            ctx,
            workdir,
            {},
            engine=args.kafka,
            embeddings=True,
            apis=("openai",),
            ocr=True,
            extra_env={
                "AIBROKER_EMBEDDINGS_THREADS": str(args.embed_threads),
                **(
                    {"AIBROKER_KAFKA_FETCH_MAX_WAIT_MS": str(args.fetch_wait_ms)}
                    if args.fetch_wait_ms
                    else {}
                ),
            },
        )
        # The same baselines with the broker up but idle: how much its idle polling costs.
        report["direct_beside_idle_broker"] = {
            "embeddings": direct_embeddings(texts, 50),
            "ocr": direct_ocr(pictures),
        }
        report["broker"] = asyncio.run(through_broker(stack, texts, pictures, args))
    if args.dedicated_core:
        report["dedicated_core"] = dedicated_core(texts, args, workdir)
        # The baseline of the model's own process: the same, with the model a thread of the
        # pool (sharing its GIL), as before AIBROKER_EMBEDDINGS_ISOLATE.
        report["dedicated_core_thread"] = dedicated_core(texts, args, workdir, isolate=False)
    direct, broker = report["direct"], report["broker"]
    rate = broker["embeddings_saturated"]["throughput_rps"]
    report["ratios"] = {
        "embeddings_vs_batch32": round(rate / direct["embeddings"]["batch32_per_s"], 3),
        "embeddings_vs_one_at_a_time": round(rate / direct["embeddings"]["one_at_a_time_per_s"], 3),
        "ocr": round(broker["ocr_saturated"]["throughput_rps"] / direct["ocr"]["images_per_s"], 3),
    }
    report["meta"] = {
        "cpus": os.cpu_count(),
        "seconds": args.seconds,
        "embed_threads": args.embed_threads,
        "fetch_wait_ms": args.fetch_wait_ms,
        "at": time.time(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    text = table(report)
    print(text)
    if args.update_docs:
        update_docs(args.update_docs, text, marker="bench-local")


if __name__ == "__main__":
    main()
