"""The collection operations: create (the model probed for its dimension), list, show (with
Qdrant's counts), drop; and a collection's documents: attach a file (recorded, then its index
job queued), list, detach. Each answers the document its route returns."""

from __future__ import annotations

import time
from typing import Any

from aibroker.errors import InvalidRequest, NotFound
from aibroker.ids import new_id
from aibroker.kafka.clients import encode
from aibroker.rag import index
from consumers.rag.context import (
    RagContext,
    collection_document,
    document_document,
    owned,
)
from schemas.envelopes import Status
from schemas.rag import Chunking, CollectionDef, CreateCollection, DocumentRecord, RagJob, RagOp

PROBE = "dimension probe"
"""What a new collection's model embeds once, to learn its dimension (and that it serves)."""


async def create(ctx: RagContext, job: RagJob) -> dict[str, Any]:
    body = CreateCollection.model_validate(job.body)
    s = ctx.settings
    size = body.chunk_tokens or s.chunk_tokens
    overlap = (
        body.overlap_tokens if body.overlap_tokens is not None else min(s.overlap_tokens, size // 2)
    )
    try:
        chunking = Chunking(size_tokens=size, overlap_tokens=overlap)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="overlap_tokens") from exc
    model = body.model or s.embedding_model
    [vector] = await ctx.vectors.embed(
        job, model, [PROBE], request_id=f"{job.id}.probe", bulk=False
    )
    await ctx.vectors.forget(f"{job.id}.probe")
    collection = CollectionDef(
        id=job.collection or new_id("vs"),
        tenant=job.tenant,
        name=body.name,
        model=model,
        dimension=len(vector),
        chunking=chunking,
        metadata=body.metadata,
        created_at=job.created_at,
    )
    await index.ensure_collection(ctx.qdrant, collection.qdrant_name, collection.dimension)
    await ctx.registry.put_collection(collection)
    return collection_document(collection, [])


async def listed(ctx: RagContext, job: RagJob) -> dict[str, Any]:
    data = [
        collection_document(c, ctx.registry.documents(c.id))
        for c in ctx.registry.collections(job.tenant)
    ]
    return {"object": "list", "data": data}


async def show(ctx: RagContext, job: RagJob) -> dict[str, Any]:
    c = owned(ctx, job)
    shown = collection_document(c, ctx.registry.documents(c.id))
    if job.body.get("stats") is False:  # an ownership check: the registry alone
        return shown
    stats = await index.collection_stats(ctx.qdrant, c.qdrant_name)
    shown.update(points=stats.get("points", 0), qdrant=stats)
    return shown


async def drop(ctx: RagContext, job: RagJob) -> dict[str, Any]:
    c = owned(ctx, job)
    if await ctx.qdrant.collection_exists(c.qdrant_name):
        await ctx.qdrant.delete_collection(c.qdrant_name)
    await ctx.registry.drop_collection(c)
    return {"id": c.id, "object": "rag.collection.deleted", "deleted": True}


async def attach(ctx: RagContext, job: RagJob) -> dict[str, Any]:
    """A file of `/v1/files` as a document of the collection: recorded `in_progress`, then its
    index job queued under the record's request id. Run again (a redelivery after a crash),
    it finds the record and queues the same job again: one result, the first, is kept."""
    c = owned(ctx, job)
    file_id = str(job.body.get("file_id") or "")
    record = await ctx.files.get(file_id, job.tenant)
    if record is None:
        raise NotFound(f"No such File object: {file_id}", param="file_id")
    attributes = job.body.get("attributes") or {}
    found = ctx.registry.document(c.id, file_id)
    if found is None or found.status != "in_progress":
        found = DocumentRecord(
            collection=c.id,
            document_id=file_id,
            tenant=job.tenant,
            request_id=new_id("req"),
            created_at=time.time(),
            filename=record.filename,
            usage_bytes=record.bytes,
            attributes=attributes,
        )
        await ctx.registry.put_document(found)
    work = RagJob(
        id=found.request_id,
        tenant=job.tenant,
        key_id=job.key_id,
        user=job.user,
        op=RagOp.INDEX,
        collection=c.id,
        body={"documents": [{"id": file_id, "file_id": file_id, "metadata": attributes}]},
        created_at=time.time(),
    )
    await ctx.results.advance(work.id, work.tenant, Status.QUEUED)
    await ctx.publisher.forward_record(ctx.names.rag_jobs, encode(work), c.id.encode())
    return document_document(found)


async def files(ctx: RagContext, job: RagJob) -> dict[str, Any]:
    c = owned(ctx, job)
    return {"object": "list", "data": [document_document(d) for d in ctx.registry.documents(c.id)]}


async def detach(ctx: RagContext, job: RagJob) -> dict[str, Any]:
    c = owned(ctx, job)
    document_id = str(job.body.get("document_id") or "")
    found = ctx.registry.document(c.id, document_id)
    if found is None:
        raise NotFound(f"No document '{document_id}' in collection '{c.id}'.", param="file_id")
    removed = await index.delete_document(ctx.qdrant, c.qdrant_name, document_id)
    await ctx.registry.drop_document(found)
    return {"id": document_id, "object": "rag.document.deleted", "deleted": True, "chunks": removed}
