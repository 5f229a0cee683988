"""What RAG costs on a running broker: index throughput, search latency and a grounded
answer's added latency, each beside its baseline measured in the same run.

    python -m loadtest.bench_rag [--kafka apache|tansu|both] [--searches 200] [--queries 100]
        [--update-docs docs/performance/rag.md]

The stack runs the embeddings pool (all-MiniLM-L6-v2 on CPU) and the RAG worker (Qdrant's
local mode), at their default settings. Three measurements:

- **Index**: the passages of the labelled retrieval set (`tests/data/retrieval_set.jsonl`) in
  one index job, from its `202` to its end on `GET /v1/requests/{id}`: chunks a second. The
  baseline: the same chunks through `encode()` of the same model in this process, at the
  pool's forward batch (the model's floor, no Kafka, no Qdrant).
- **Search**: the set's queries one at a time, dense: p50 and p99 of `POST /v1/rag/search`.
  The baseline: `POST /v1/embeddings` of the same query text (the pool's round trip, which a
  search includes).
- **Query**: `POST /v1/rag/query` answered by the mock's chat model, against the same chat
  call with the same prompt size sent directly to `/v1/chat/completions`: the added p50 is
  the search and the prompt assembly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from aibroker.rag.chunking import chunk_text
from aibroker.settings import RagSettings
from aibroker.settings.local import EmbeddingsSettings
from loadtest.bench_rag_quality import load_set
from loadtest.doc_tables import doc_page, report_engines
from loadtest.stack import EMBEDDINGS_MODEL, Stack, bench_stack

CHAT = "mock/echo"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def direct_encode_s(chunks: list[str]) -> float:
    """Seconds for `encode()` of the chunks, the model loaded first (not timed)."""
    from consumers.local.embeddings.engine import load_model

    model = load_model(EMBEDDINGS_MODEL, "cpu")
    model.encode(chunks[:32], batch_size=32, show_progress_bar=False)  # warm
    started = time.perf_counter()
    model.encode(chunks, batch_size=EmbeddingsSettings().forward_batch, show_progress_bar=False)
    return time.perf_counter() - started


async def timed(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = await client.post(path, json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:300]}")
    return elapsed, answer.json()


async def ended(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    async with asyncio.timeout(1800):
        while True:
            state: dict[str, Any] = (
                await client.get(f"/v1/requests/{job_id}", params={"wait": 10})
            ).json()
            if state["status"] in ("succeeded", "failed", "cancelled", "expired"):
                return state


async def measure(stack: Stack, searches: int, queries: int) -> dict[str, Any]:
    passages, asked = load_set()
    rag = RagSettings()
    chunks = [
        c.text
        for p in passages
        for c in chunk_text(
            p["text"], size_tokens=rag.chunk_tokens, overlap_tokens=rag.overlap_tokens
        )
    ]
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=300) as client:
        # The pool loads its model on its first request: warm it before anything is timed
        # (a collection's creation embeds a probe, and waits for it no longer than RAG_WAIT_S).
        await timed(client, "/v1/embeddings", {"model": EMBEDDINGS_MODEL, "input": "warm up"})
        _, made = await timed(client, "/v1/rag/collections", {"name": "bench"})
        collection = made["id"]
        warm = {"collection": collection, "documents": [{"id": "warm", "text": "warm up"}]}
        await ended(client, (await timed(client, "/v1/rag/index", warm))[1]["id"])
        docs = [{"id": p["id"], "text": p["text"]} for p in passages]
        started = time.perf_counter()
        _, job = await timed(client, "/v1/rag/index", {"collection": collection, "documents": docs})
        done = await ended(client, job["id"])
        index_s = time.perf_counter() - started
        if done["status"] != "succeeded":
            raise RuntimeError(f"the index job ended {done['status']}: {done.get('error')}")
        texts = [q["text"] for q in asked]
        embed_ms, search_ms, inside = [], [], []
        for i in range(searches):
            text = texts[i % len(texts)]
            embedding = {"model": EMBEDDINGS_MODEL, "input": text}
            embed_ms.append((await timed(client, "/v1/embeddings", embedding))[0])
            s_ms, found = await timed(
                client, "/v1/rag/search", {"collection": collection, "query": text}
            )
            search_ms.append(s_ms)
            inside.append(found.get("timings", {}))  # the worker's own: embed_ms, search_ms
        chat_ms, query_ms, prompt_chars = [], [], []
        for i in range(queries):
            text = texts[i % len(texts)]
            q_ms, answer = await timed(
                client, "/v1/rag/query", {"collection": collection, "query": text, "model": CHAT}
            )
            query_ms.append(q_ms)
            # The same chat call alone, with a prompt as long as the grounded one.
            prompt = answer["answer"]  # the mock echoes the grounded prompt's user turn
            prompt_chars.append(len(prompt))
            body = {"model": CHAT, "messages": [{"role": "user", "content": prompt}]}
            chat_ms.append((await timed(client, "/v1/chat/completions", body))[0])
    return {
        "chunks": len(chunks),
        "documents": len(docs),
        "index_s": index_s,
        "direct_encode_s": direct_encode_s(chunks),
        "search_p50_ms": statistics.median(search_ms),
        "worker_embed_p50_ms": statistics.median(t.get("embed_ms", 0.0) for t in inside),
        "worker_search_p50_ms": statistics.median(t.get("search_ms", 0.0) for t in inside),
        "index_timings": done.get("response", {}).get("timings", {}),
        "search_p99_ms": percentile(search_ms, 0.99),
        "embed_p50_ms": statistics.median(embed_ms),
        "embed_p99_ms": percentile(embed_ms, 0.99),
        "query_p50_ms": statistics.median(query_ms),
        "chat_p50_ms": statistics.median(chat_ms),
        "prompt_chars_p50": statistics.median(prompt_chars),
        "searches": searches,
        "queries": queries,
    }


def run_on(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"aibroker-bench-rag-{engine}-"))
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(
            ctx, workdir, {}, engine=engine, apis=("openai",), embeddings=True, rag=True
        )
        return asyncio.run(measure(stack, args.searches, args.queries))


def table(report: dict[str, Any], _: int) -> str:
    through = report["chunks"] / report["index_s"]
    direct = report["chunks"] / report["direct_encode_s"]
    lines = [
        "| measure | through the broker | baseline, same run | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| index, chunks/s ({report['documents']} documents, {report['chunks']} chunks) "
        f"| {through:.1f} | {direct:.1f} (`encode()` directly) | {through / direct:.2f}x |",
        f"| search p50 ({report['searches']} searches, dense) | {report['search_p50_ms']:.1f} ms "
        f"| {report['embed_p50_ms']:.1f} ms (`/v1/embeddings` of the query) "
        f"| +{report['search_p50_ms'] - report['embed_p50_ms']:.1f} ms |",
        f"| search p99 | {report['search_p99_ms']:.1f} ms | {report['embed_p99_ms']:.1f} ms "
        f"| +{report['search_p99_ms'] - report['embed_p99_ms']:.1f} ms |",
        f"| query p50 ({report['queries']} grounded answers) | {report['query_p50_ms']:.1f} ms "
        f"| {report['chat_p50_ms']:.1f} ms (the chat call alone, same prompt) "
        f"| +{report['query_p50_ms'] - report['chat_p50_ms']:.1f} ms |",
        "",
        f"Inside a search, the RAG worker's own p50s: {report['worker_embed_p50_ms']:.1f} ms "
        f"waiting for the query's vector, {report['worker_search_p50_ms']:.1f} ms in Qdrant. "
        f"Inside the index job, its stages' totals: {report['index_timings']}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kafka", choices=["apache", "tansu", "both"], default="apache")
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/bench_rag.json"))
    parser.add_argument(
        "--update-docs",
        type=doc_page("bench-rag"),
        default=None,
        metavar="PAGE",
        help="replace the table between the bench-rag markers of this docs page",
    )
    args = parser.parse_args(argv)
    report_engines(args, run_on, table, marker="bench-rag")


if __name__ == "__main__":
    main()
