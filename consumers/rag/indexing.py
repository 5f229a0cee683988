"""The index job and the search: extract → chunk each document, then embed the chunks of all
of them (through the pool, on the batch lane, in requests of the pool's batch size that mix
neighbouring documents, several in flight) → upsert each document's points; and query →
embed → search. Point ids are stable per collection, document and chunk, and an embeddings
request's id is named by the chunks it holds, so a job run again after a crash writes the same
points and asks for no vector it already has: no duplicate, nothing lost."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aibroker.errors import BrokerError, InvalidRequest
from aibroker.rag import index
from aibroker.rag.batching import EmbedBatch, embed_batches
from aibroker.rag.chunking import Chunk, chunk_text
from aibroker.rag.extract import UnsupportedDocument, extract_text
from aibroker.rag.prompt import grounded_messages, sources
from consumers.rag.context import JobFailed, RagContext, owned
from schemas.rag import CollectionDef, Document, DocumentRecord, RagJob, SearchBody

log = logging.getLogger(__name__)


class _Timings:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def add(self, stage: str, started: float) -> None:
        self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - started) * 1000

    def rounded(self) -> dict[str, float]:
        return {f"{k}_ms": round(v, 1) for k, v in self.ms.items()}


def document_id(doc: Document) -> str:
    """The document's id: its own, its file's, or a hash of its text (the same text indexed
    twice is one document)."""
    if doc.id:
        return doc.id
    if doc.file_id:
        return doc.file_id
    return "doc-" + hashlib.sha256((doc.text or "").encode()).hexdigest()[:24]


EMBED_IN_FLIGHT = 4
"""Embeddings requests an index job keeps in flight: enough to keep the pool's micro-batcher
fed while earlier answers are read, few enough to leave it to other tenants' work."""


@dataclass
class _Prepared:
    """A document extracted and chunked, waiting for its vectors."""

    record: DocumentRecord
    chunks: list[Chunk]
    size: int
    filename: str | None
    metadata: dict[str, Any]
    vectors: dict[int, list[float]] = field(default_factory=dict)
    error: dict[str, Any] | None = None


async def run_index(ctx: RagContext, job: RagJob) -> dict[str, Any]:
    c = owned(ctx, job)
    docs = [Document.model_validate(d) for d in job.body.get("documents", [])]
    timings = _Timings()
    done: dict[str, dict[str, Any]] = {}
    todo: dict[str, _Prepared] = {}
    for doc in docs:
        doc_id = document_id(doc)
        record = ctx.registry.document(c.id, doc_id)
        if record is not None and record.request_id == job.id and record.status == "completed":
            done[doc_id] = {"id": doc_id, "status": "completed", "chunks": record.chunks}
            continue  # indexed by this job before a crash
        if record is None or record.request_id != job.id or record.status != "in_progress":
            record = DocumentRecord(
                collection=c.id,
                document_id=doc_id,
                tenant=job.tenant,
                request_id=job.id,
                created_at=time.time(),
                attributes=doc.metadata,
            )
            await ctx.registry.put_document(record)
        try:
            todo[doc_id] = await _prepare(ctx, job, c, doc, record, timings)
        except (UnsupportedDocument, InvalidRequest) as exc:
            done[doc_id] = await _failed(ctx, record, "invalid_file", str(exc))
    await _embed_all(ctx, job, c, todo, timings)
    for doc_id, p in todo.items():
        if p.error is not None:
            done[doc_id] = await _failed(ctx, p.record, p.error["code"], p.error["message"])
            continue
        points = [
            index.chunk_point(c.id, doc_id, ch, p.vectors[i], p.metadata)
            for i, ch in enumerate(p.chunks)
        ]
        started = time.perf_counter()
        await index.replace_document(ctx.qdrant, c.qdrant_name, doc_id, points)
        timings.add("upsert", started)
        update = {"status": "completed", "chunks": len(p.chunks), "usage_bytes": p.size}
        if p.filename:
            update["filename"] = p.filename
        await ctx.registry.put_document(p.record.model_copy(update=update))
        done[doc_id] = {"id": doc_id, "status": "completed", "chunks": len(p.chunks)}
    ordered = [done[d] for d in dict.fromkeys(document_id(doc) for doc in docs)]
    response = {
        "object": "rag.index",
        "collection": c.id,
        "documents": ordered,
        "chunks": sum(d.get("chunks", 0) for d in ordered),
        "timings": timings.rounded(),
    }
    failed_docs = [d for d in ordered if d["status"] == "failed"]
    if failed_docs:
        first = failed_docs[0]["error"]["message"]
        error = InvalidRequest(
            f"{len(failed_docs)} of {len(ordered)} documents were not indexed; first: {first}",
            code="documents_failed",
        )
        raise JobFailed(error, response)
    return response


async def _failed(
    ctx: RagContext, record: DocumentRecord, code: str, message: str
) -> dict[str, Any]:
    failed = {"code": code, "message": message}
    await ctx.registry.put_document(
        record.model_copy(update={"status": "failed", "last_error": failed})
    )
    return {"id": record.document_id, "status": "failed", "error": failed}


async def _prepare(
    ctx: RagContext,
    job: RagJob,
    c: CollectionDef,
    doc: Document,
    record: DocumentRecord,
    timings: _Timings,
) -> _Prepared:
    """Extract and chunk one document."""
    started = time.perf_counter()
    filename: str | None = None
    if doc.file_id is not None:
        file = await ctx.files.get(doc.file_id, job.tenant)
        if file is None:
            raise InvalidRequest(f"No such File object: {doc.file_id}", param="file_id")
        filename = file.filename
        data = await ctx.files.store.read(file.id)
        text = extract_text(data, filename=file.filename, content_type=None)
        size = len(data)
    else:
        text = doc.text or ""
        size = len(text.encode())
    timings.add("extract", started)
    started = time.perf_counter()
    chunks = chunk_text(
        text, size_tokens=c.chunking.size_tokens, overlap_tokens=c.chunking.overlap_tokens
    )
    timings.add("chunk", started)
    metadata = {**doc.metadata, **({"filename": filename} if filename else {})}
    return _Prepared(record, chunks, size, filename, metadata)


async def _embed_all(
    ctx: RagContext,
    job: RagJob,
    c: CollectionDef,
    todo: dict[str, _Prepared],
    timings: _Timings,
) -> None:
    """Every prepared document's vectors, in requests of the pool's batch size that mix
    neighbouring documents, `EMBED_IN_FLIGHT` at a time. A request refused for good fails the
    documents it held; a retryable failure ends the job's attempt (it is run again and finds
    the vectors it already has)."""
    prepared = list(todo.values())
    batches = embed_batches(
        job.id, [(d, len(p.chunks)) for d, p in todo.items()], ctx.settings.embed_batch
    )
    gate = asyncio.Semaphore(EMBED_IN_FLIGHT)
    started = time.perf_counter()

    async def one(batch: EmbedBatch) -> None:
        texts = [prepared[s.doc].chunks[s.chunk].text for s in batch.slots]
        async with gate:
            try:
                vectors = await ctx.vectors.embed(
                    job, c.model, texts, request_id=batch.request_id, bulk=True
                )
            except BrokerError as exc:
                if exc.retryable:
                    raise
                error = {"code": exc.error_code or "server_error", "message": exc.message}
                for s in batch.slots:
                    prepared[s.doc].error = error
                return
        for s, v in zip(batch.slots, vectors, strict=True):
            prepared[s.doc].vectors[s.chunk] = v

    tasks = [asyncio.ensure_future(one(b)) for b in batches]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    timings.add("embed", started)
    for batch in batches:  # the vectors are held here now; the pool's copies may go
        await ctx.vectors.forget(batch.request_id)


async def run_search(ctx: RagContext, job: RagJob) -> dict[str, Any]:
    c = owned(ctx, job)
    body = SearchBody.model_validate({**job.body, "collection": c.id})
    top_k = min(body.top_k, ctx.settings.max_top_k)
    started = time.perf_counter()
    [vector] = await ctx.vectors.embed(
        job, c.model, [body.query], request_id=f"{job.id}.q", bulk=False
    )
    embed_ms = (time.perf_counter() - started) * 1000
    await ctx.vectors.forget(f"{job.id}.q")
    started = time.perf_counter()
    try:
        hits = await index.search(
            ctx.qdrant,
            c.qdrant_name,
            dense=vector,
            text=body.query,
            top_k=top_k,
            filters=body.filters,
            score_threshold=body.score_threshold,
            hybrid=body.hybrid,
        )
    except ValueError as exc:  # a filter it cannot express
        raise InvalidRequest(str(exc), param="filters") from exc
    search_ms = (time.perf_counter() - started) * 1000
    found: dict[str, Any] = {
        "object": "list",
        "collection": c.id,
        "data": [
            {
                "id": h.point_id,
                "score": h.score,
                "text": h.text,
                "document_id": h.document_id,
                "chunk_index": h.chunk_index,
                "metadata": h.metadata,
            }
            for h in hits
        ],
        "timings": {"embed_ms": round(embed_ms, 1), "search_ms": round(search_ms, 1)},
    }
    if job.body.get("grounded"):  # for `/v1/rag/query`: the prompt, assembled where the hits are
        instructions = job.body.get("instructions")
        found["messages"] = grounded_messages(
            body.query, hits, instructions=instructions if isinstance(instructions, str) else None
        )
        found["sources"] = sources(hits)
    return found
