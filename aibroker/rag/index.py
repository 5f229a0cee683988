"""A RAG collection's points in Qdrant: one point per chunk, a named dense vector ("dense",
cosine) beside a sparse one ("bm25", IDF applied by Qdrant), the chunk's text, document and
metadata in the payload. Works on `AsyncQdrantClient` in local mode (`:memory:` or a
directory, what `aibroker dev` uses) and against a server. Only this module of `rag` imports
qdrant-client; the caller owns the client and translates its errors at its boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from aibroker.rag.chunking import Chunk
from aibroker.rag.ids import chunk_point_id
from aibroker.rag.sparse import query_terms, sparse_terms

DENSE = "dense"
SPARSE = "bm25"
PREFETCH_FACTOR = 4
"""Candidates each half of a hybrid search brings to the fusion, per result asked for."""
PREFETCH_MIN = 40
"""At least this many candidates per half: RRF needs both lists deep enough to overlap."""


def _local(client: AsyncQdrantClient) -> bool:
    """Local mode (no payload indexes there: creating one only warns)."""
    options = client.init_options
    return options.get("location") == ":memory:" or options.get("path") is not None


async def ensure_collection(client: AsyncQdrantClient, name: str, dimension: int) -> None:
    """Create the collection if it is missing; a present one must have `dimension` (a
    collection is bound to one embedding model). Safe to call again, and from two workers at
    once."""
    if not await client.collection_exists(name):
        try:
            await client.create_collection(
                name,
                vectors_config={
                    DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
        except Exception:
            # Another worker created it between the check and the create: fine if it exists.
            if not await client.collection_exists(name):
                raise
        if not _local(client):
            for field, schema in (
                ("document_id", models.PayloadSchemaType.KEYWORD),
                ("chunk_index", models.PayloadSchemaType.INTEGER),
            ):
                await client.create_payload_index(name, field, field_schema=schema, wait=True)
    vectors = (await client.get_collection(name)).config.params.vectors
    size = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
    if size != dimension:
        raise ValueError(f"collection {name} holds {size}-dimension vectors, not {dimension}")


def chunk_point(
    collection: str,
    document_id: str,
    chunk: Chunk,
    vector: list[float],
    metadata: dict[str, Any],
) -> models.PointStruct:
    """The point of one chunk: its stable id, both vectors, and what a hit shows."""
    indices, values = sparse_terms(chunk.text)
    return models.PointStruct(
        id=chunk_point_id(collection, document_id, chunk.index),
        vector={DENSE: vector, SPARSE: models.SparseVector(indices=indices, values=values)},
        payload={
            "document_id": document_id,
            "chunk_index": chunk.index,
            "text": chunk.text,
            "metadata": metadata,
        },
    )


def _document(document_id: str) -> models.FieldCondition:
    return models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))


async def replace_document(
    client: AsyncQdrantClient,
    collection: str,
    document_id: str,
    points: list[models.PointStruct],
) -> None:
    """Write a document's chunks, then drop the ones a longer earlier version left behind.
    Upsert first: a search in between sees the old or the new chunk at each position, never
    a document with none."""
    if points:
        await client.upsert(collection, points=points, wait=True)
    stale = models.Filter(
        must=[
            _document(document_id),
            models.FieldCondition(key="chunk_index", range=models.Range(gte=len(points))),
        ]
    )
    await client.delete(collection, points_selector=models.FilterSelector(filter=stale), wait=True)


async def delete_document(client: AsyncQdrantClient, collection: str, document_id: str) -> int:
    """Delete a document's points; how many there were."""
    selector = models.Filter(must=[_document(document_id)])
    found = (await client.count(collection, count_filter=selector, exact=True)).count
    if found:
        await client.delete(
            collection, points_selector=models.FilterSelector(filter=selector), wait=True
        )
    return found


@dataclass(frozen=True)
class Hit:
    point_id: str
    score: float
    """Cosine similarity for a dense search; the reciprocal-rank-fusion score for a hybrid
    one (ranks, not similarities: comparable within one result list only)."""
    text: str
    document_id: str
    chunk_index: int
    metadata: dict[str, Any]


def metadata_filter(filters: dict[str, Any] | None) -> models.Filter | None:
    """Equality on metadata keys (`{"lang": "en"}` matches payload `metadata.lang == "en"`);
    a list value matches any of its members. Values are strings, integers or booleans."""
    if not filters:
        return None
    conditions: list[models.Condition] = []
    for key, value in filters.items():
        if not key or not isinstance(key, str):
            raise ValueError("a filter's key must be a non-empty string")
        match: models.Match
        if isinstance(value, list) and value and all(_matchable(v) for v in value):
            match = models.MatchAny(any=value)
        elif _matchable(value):
            match = models.MatchValue(value=value)
        else:
            raise ValueError(f"filter {key!r}: match a string, an integer or a boolean")
        conditions.append(models.FieldCondition(key=f"metadata.{key}", match=match))
    return models.Filter(must=conditions)


def _matchable(value: Any) -> bool:
    return isinstance(value, str | int | bool)


async def search(
    client: AsyncQdrantClient,
    collection: str,
    *,
    dense: list[float],
    text: str,
    top_k: int,
    filters: dict[str, Any] | None,
    score_threshold: float | None,
    hybrid: bool,
) -> list[Hit]:
    """The `top_k` chunks nearest the query. Dense: by cosine. Hybrid: the dense and the
    sparse (BM25) candidates fused by reciprocal rank in one query; a `score_threshold` (a
    cosine) then bounds the dense candidates, and the sparse ones are drawn from those, so
    every hit clears it either way."""
    where = metadata_filter(filters)
    if not hybrid:
        found = await client.query_points(
            collection,
            query=dense,
            using=DENSE,
            query_filter=where,
            limit=top_k,
            score_threshold=score_threshold,
            with_payload=True,
        )
        return [_hit(point) for point in found.points]
    depth = max(top_k * PREFETCH_FACTOR, PREFETCH_MIN)
    near = models.Prefetch(
        query=dense, using=DENSE, filter=where, limit=depth, score_threshold=score_threshold
    )
    indices, values = query_terms(text)
    lexical = models.Prefetch(
        query=models.SparseVector(indices=indices, values=values),
        using=SPARSE,
        filter=where,
        limit=depth,
        prefetch=near if score_threshold is not None else None,
    )
    found = await client.query_points(
        collection,
        prefetch=[near, lexical] if indices else [near],
        query=models.FusionQuery(fusion=models.Fusion.RRF),
        limit=top_k,
        with_payload=True,
    )
    return [_hit(point) for point in found.points]


def _hit(point: models.ScoredPoint) -> Hit:
    payload = point.payload or {}
    metadata = payload.get("metadata")
    return Hit(
        point_id=str(point.id),
        score=float(point.score),
        text=str(payload.get("text", "")),
        document_id=str(payload.get("document_id", "")),
        chunk_index=int(payload.get("chunk_index", 0)),
        metadata=dict(metadata) if isinstance(metadata, dict) else {},
    )


async def collection_stats(client: AsyncQdrantClient, collection: str) -> dict[str, int]:
    """Points, documents (every document has a chunk 0), the dense vectors' dimension and
    Qdrant's segments."""
    info = await client.get_collection(collection)
    points = (await client.count(collection, exact=True)).count
    firsts = models.Filter(
        must=[models.FieldCondition(key="chunk_index", match=models.MatchValue(value=0))]
    )
    documents = (await client.count(collection, count_filter=firsts, exact=True)).count
    vectors = info.config.params.vectors
    dimension = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else 0
    return {
        "points": points,
        "documents": documents,
        "dimensions": dimension,
        "segments": info.segments_count or 0,
    }
