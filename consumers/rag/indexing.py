"""The index job and the search: extract → chunk → embed (through the pool, in batches, on
the batch lane) → upsert, document by document; and query → embed → search. Point ids are
stable per collection, document and chunk, and an embeddings request's id per job, document
and batch, so a job run again after a crash writes the same points and asks for no vector it
already has: no duplicate, nothing lost."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from aibroker.errors import BrokerError, InvalidRequest
from aibroker.rag import index
from aibroker.rag.chunking import chunk_text
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


async def run_index(ctx: RagContext, job: RagJob) -> dict[str, Any]:
    c = owned(ctx, job)
    docs = [Document.model_validate(d) for d in job.body.get("documents", [])]
    timings = _Timings()
    done: list[dict[str, Any]] = []
    for n, doc in enumerate(docs):
        doc_id = document_id(doc)
        record = ctx.registry.document(c.id, doc_id)
        if record is not None and record.request_id == job.id and record.status == "completed":
            done.append({"id": doc_id, "status": "completed", "chunks": record.chunks})
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
            chunks, size, filename = await _index_one(ctx, job, c, doc, doc_id, n, timings)
        except (UnsupportedDocument, InvalidRequest) as exc:
            failed = {"code": "invalid_file", "message": str(exc)}
            await ctx.registry.put_document(
                record.model_copy(update={"status": "failed", "last_error": failed})
            )
            done.append({"id": doc_id, "status": "failed", "error": failed})
            continue
        except BrokerError as exc:
            if exc.retryable:
                raise
            failed = {"code": exc.error_code or "server_error", "message": exc.message}
            await ctx.registry.put_document(
                record.model_copy(update={"status": "failed", "last_error": failed})
            )
            done.append({"id": doc_id, "status": "failed", "error": failed})
            continue
        update = {"status": "completed", "chunks": chunks, "usage_bytes": size}
        if filename:
            update["filename"] = filename
        await ctx.registry.put_document(record.model_copy(update=update))
        done.append({"id": doc_id, "status": "completed", "chunks": chunks})
    response = {
        "object": "rag.index",
        "collection": c.id,
        "documents": done,
        "chunks": sum(d.get("chunks", 0) for d in done),
        "timings": timings.rounded(),
    }
    failed_docs = [d for d in done if d["status"] == "failed"]
    if failed_docs:
        first = failed_docs[0]["error"]["message"]
        error = InvalidRequest(
            f"{len(failed_docs)} of {len(done)} documents were not indexed; first: {first}",
            code="documents_failed",
        )
        raise JobFailed(error, response)
    return response


async def _index_one(
    ctx: RagContext,
    job: RagJob,
    c: CollectionDef,
    doc: Document,
    doc_id: str,
    n: int,
    timings: _Timings,
) -> tuple[int, int, str | None]:
    """Index one document; its chunk count, its size in bytes and its file's name."""
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
    points = []
    batch = ctx.settings.embed_batch
    asked: list[str] = []
    for b, first in enumerate(range(0, len(chunks), batch)):
        part = chunks[first : first + batch]
        started = time.perf_counter()
        request_id = f"{job.id}.d{n}.b{b}"
        vectors = await ctx.vectors.embed(
            job, c.model, [ch.text for ch in part], request_id=request_id, bulk=True
        )
        asked.append(request_id)
        timings.add("embed", started)
        points += [
            index.chunk_point(c.id, doc_id, ch, v, metadata)
            for ch, v in zip(part, vectors, strict=True)
        ]
    started = time.perf_counter()
    await index.replace_document(ctx.qdrant, c.qdrant_name, doc_id, points)
    timings.add("upsert", started)
    for request_id in asked:  # the points are written: the vectors are no longer needed
        await ctx.vectors.forget(request_id)
    return len(chunks), size, filename


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
