"""What every RAG operation works with, opened once by the worker (`main`), and the errors an
operation ends with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qdrant_client import AsyncQdrantClient

from aibroker.errors import InvalidRequest, NotFound
from aibroker.kafka.publisher import Publisher
from aibroker.settings import RagSettings
from aibroker.stores.files import Files
from aibroker.stores.results import RequestStore
from consumers.rag.registry import Registry
from consumers.rag.vectors import PoolVectors
from schemas.rag import CollectionDef, DocumentRecord, RagJob
from topics.catalog import TopicNames


@dataclass(frozen=True)
class RagContext:
    settings: RagSettings
    registry: Registry
    qdrant: AsyncQdrantClient
    vectors: PoolVectors
    files: Files
    results: RequestStore
    publisher: Publisher
    names: TopicNames


class JobFailed(Exception):
    """An operation that ends failed but has something to show (an index job's documents)."""

    def __init__(self, error: InvalidRequest | NotFound, response: dict[str, Any]) -> None:
        super().__init__(error.message)
        self.error = error
        self.response = response


def owned(ctx: RagContext, job: RagJob) -> CollectionDef:
    """The job's collection, or 404 (also for another tenant's id)."""
    found = ctx.registry.collection(job.tenant, job.collection or "")
    if found is None:
        raise NotFound(f"No collection with id '{job.collection}'.", param="collection")
    return found


def collection_document(c: CollectionDef, docs: list[DocumentRecord]) -> dict[str, Any]:
    """A collection as the `/v1/rag/collections` routes show it."""
    counts = {s: 0 for s in ("in_progress", "completed", "failed", "cancelled")}
    for d in docs:
        counts[d.status] += 1
    return {
        "id": c.id,
        "object": "rag.collection",
        "name": c.name,
        "model": c.model,
        "dimensions": c.dimension,
        "chunk_tokens": c.chunking.size_tokens,
        "overlap_tokens": c.chunking.overlap_tokens,
        "metadata": c.metadata,
        "created_at": int(c.created_at),
        "documents": len(docs),
        "document_counts": {**counts, "total": len(docs)},
        "usage_bytes": sum(d.usage_bytes for d in docs),
    }


def document_document(d: DocumentRecord) -> dict[str, Any]:
    """A document's indexing state."""
    return d.model_dump(exclude={"v", "tenant"}, mode="json")
