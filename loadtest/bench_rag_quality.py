"""How well RAG search finds the passage that answers a question: the labelled retrieval set
of `tests/data/retrieval_set.jsonl` (`loadtest/retrieval_set.py`) embedded by the embeddings
pool's model (all-MiniLM-L6-v2), indexed through `aibroker.rag.index` in Qdrant's local mode,
and searched dense-only and hybrid (dense + BM25, fused by reciprocal rank).

    python -m loadtest.bench_rag_quality [--device cpu] [--update-docs docs/performance/rag.md]

Each passage is one document, chunked by `chunk_text` with the collections' default size;
each query is embedded the same way and searched for its `top_k` = 10 nearest chunks. Recall@5:
the share of a query's relevant passages among the first five results; MRR@10: the mean of
1 / the rank of the first relevant one (0 past ten). Both are averaged over the queries, in
all and by kind (near-duplicates, names, paraphrases, several answers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from qdrant_client import AsyncQdrantClient

from aibroker.rag.chunking import chunk_text
from aibroker.rag.index import chunk_point, ensure_collection, replace_document, search
from aibroker.rag.quality import Run, mrr, recall_at_k
from loadtest.bench_semantic import embed
from loadtest.doc_tables import doc_page, update_docs
from loadtest.retrieval_set import SET

COLLECTION = "retrieval-set"
SIZE_TOKENS, OVERLAP_TOKENS = 256, 32
"""The chunking of the measured collection: MiniLM's window, an eighth shared."""
K, DEPTH = 5, 10
KINDS = ("near_duplicate", "lexical", "paraphrase", "multi")
MODES = ("dense", "hybrid")


def load_set(path: Path = SET) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["type"] == "passage"], [r for r in rows if r["type"] == "query"]


def _ranked(hits: list[Any]) -> list[str]:
    """Documents in the order of their best chunk (a document's later chunks add nothing)."""
    seen: list[str] = []
    for hit in hits:
        if hit.document_id not in seen:
            seen.append(hit.document_id)
    return seen


async def rank(
    passages: list[dict[str, Any]],
    queries: list[dict[str, Any]],
    vectors: dict[str, list[float]],
) -> dict[str, list[list[str]]]:
    """Each query's ranked passage ids, by mode. `vectors`: every chunk's and query's text to
    its embedding."""
    client = AsyncQdrantClient(location=":memory:")
    try:
        await ensure_collection(client, COLLECTION, len(next(iter(vectors.values()))))
        for passage in passages:
            chunks = chunk_text(
                passage["text"], size_tokens=SIZE_TOKENS, overlap_tokens=OVERLAP_TOKENS
            )
            points = [
                chunk_point(
                    COLLECTION, passage["id"], c, vectors[c.text], {"topic": passage["topic"]}
                )
                for c in chunks
            ]
            await replace_document(client, COLLECTION, passage["id"], points)
        ranked: dict[str, list[list[str]]] = {mode: [] for mode in MODES}
        for query in queries:
            for mode in MODES:
                hits = await search(
                    client,
                    COLLECTION,
                    dense=vectors[query["text"]],
                    text=query["text"],
                    top_k=DEPTH,
                    filters=None,
                    score_threshold=None,
                    hybrid=mode == "hybrid",
                )
                ranked[mode].append(_ranked(hits))
        return ranked
    finally:
        await client.close()


def texts_to_embed(passages: list[dict[str, Any]], queries: list[dict[str, Any]]) -> list[str]:
    chunks = {
        c.text
        for p in passages
        for c in chunk_text(p["text"], size_tokens=SIZE_TOKENS, overlap_tokens=OVERLAP_TOKENS)
    }
    return sorted(chunks | {q["text"] for q in queries})


def scores(queries: list[dict[str, Any]], ranked: list[list[str]]) -> dict[str, dict[str, float]]:
    """Recall@K and MRR@DEPTH, in all and by kind."""
    runs: list[tuple[str, Run]] = [
        (q["kind"], (r, set(q["relevant"]))) for q, r in zip(queries, ranked, strict=True)
    ]
    out = {}
    for kind in ("all", *KINDS):
        chosen = [run for k, run in runs if kind in ("all", k)]
        if chosen:
            out[kind] = {"recall": recall_at_k(chosen, K), "mrr": mrr(chosen), "n": len(chosen)}
    return out


def measure(device: str = "cpu", forward_batch: int = 32) -> dict[str, dict[str, dict[str, float]]]:
    """The whole measurement: by mode, by kind, recall@5 and MRR@10."""
    passages, queries = load_set()
    texts = texts_to_embed(passages, queries)
    vectors = dict(zip(texts, embed(texts, device, forward_batch), strict=True))
    ranked = asyncio.run(rank(passages, queries, vectors))
    return {mode: scores(queries, ranked[mode]) for mode in MODES}


def table(report: dict[str, dict[str, dict[str, float]]], passages: int) -> str:
    counts = {kind: int(report["dense"][kind]["n"]) for kind in report["dense"]}
    names = {
        "all": "all",
        "near_duplicate": "near-duplicates",
        "lexical": "names",
        "paraphrase": "paraphrases",
        "multi": "several answers",
    }
    head = "| search | " + " | ".join(f"{names[k]} ({counts[k]})" for k in counts) + " |"
    lines = [
        "Recall@5 / MRR@10 by kind of query (number of queries in brackets):",
        "",
        head,
        "|" + " --- |" * (1 + len(counts)),
    ]
    for mode in MODES:
        cells = [f"{report[mode][k]['recall']:.3f} / {report[mode][k]['mrr']:.3f}" for k in counts]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    lines += ["", f"{passages} passages, {counts['all']} queries, all-MiniLM-L6-v2 on CPU."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--forward-batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/rag_quality.json"))
    parser.add_argument("--update-docs", type=doc_page("bench-rag-quality"), metavar="PAGE")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    report = measure(args.device, args.forward_batch)
    text = table(report, len(load_set()[0]))
    print(text)
    print(f"{time.perf_counter() - began:.1f} s in all (model load included)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.update_docs:
        update_docs(args.update_docs, text, marker="bench-rag-quality")


if __name__ == "__main__":
    main()
