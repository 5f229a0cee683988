"""The RAG index on Qdrant's local mode (in process, no server): stable ids, idempotent
collections bound to a dimension, re-indexing that replaces a document's chunks, deletes that
count, metadata filters, thresholds, and hybrid search finding what dense search misses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aibroker.rag.chunking import Chunk
from aibroker.rag.ids import chunk_point_id

qdrant_client = pytest.importorskip("qdrant_client", reason="needs qdrant-client")

from aibroker.rag import index  # noqa: E402  (imports qdrant-client)

pytestmark = pytest.mark.unit
DIM = 4


def test_point_ids_are_uuids_stable_per_collection_document_and_chunk() -> None:
    one = chunk_point_id("c", "doc", 0)
    assert uuid.UUID(one).version == 5
    assert one == chunk_point_id("c", "doc", 0)
    assert len({one, chunk_point_id("c", "doc", 1), chunk_point_id("c2", "doc", 0)}) == 3
    assert chunk_point_id("c", "doc", 1) != chunk_point_id("c", "doc1", 0)
    # Pinned: a changed id would duplicate every chunk re-indexed after an upgrade.
    assert chunk_point_id("tenant-a", "file-1", 3) == "fea44e96-6ef3-5074-a008-26b19773b24b"
    with pytest.raises(ValueError, match="chunk_index"):
        chunk_point_id("c", "doc", -1)


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    qdrant = qdrant_client.AsyncQdrantClient(location=":memory:")
    await index.ensure_collection(qdrant, "col", DIM)
    yield qdrant
    await qdrant.close()


def point(doc: str, n: int, text: str, vector: list[float], **metadata: Any) -> Any:
    return index.chunk_point("col", doc, Chunk(n, text, 0, len(text)), vector, metadata)


async def put(client: Any, doc: str, texts: list[tuple[str, list[float]]], **meta: Any) -> None:
    points = [point(doc, n, text, vector, **meta) for n, (text, vector) in enumerate(texts)]
    await index.replace_document(client, "col", doc, points)


async def test_ensure_collection_is_idempotent_and_holds_its_dimension(client: Any) -> None:
    await index.ensure_collection(client, "col", DIM)
    with pytest.raises(ValueError, match="4-dimension"):
        await index.ensure_collection(client, "col", DIM + 1)
    assert await index.collection_stats(client, "col") == {
        "points": 0, "documents": 0, "dimensions": DIM, "segments": 1,
    }  # fmt: skip


async def test_reindexing_replaces_a_documents_chunks_and_drops_the_rest(client: Any) -> None:
    await put(client, "a", [("one", [1, 0, 0, 0]), ("two", [0, 1, 0, 0]), ("three", [0, 0, 1, 0])])
    await put(client, "b", [("other", [0, 0, 0, 1])])
    await put(client, "a", [("uno", [1, 0, 0, 0])])
    stats = await index.collection_stats(client, "col")
    assert (stats["points"], stats["documents"]) == (2, 2)
    hits = await index.search(
        client, "col", dense=[1, 0, 0, 0], text="", top_k=5, filters=None,
        score_threshold=None, hybrid=False,
    )  # fmt: skip
    assert [(h.document_id, h.chunk_index, h.text) for h in hits[:2]] == [
        ("a", 0, "uno"), ("b", 0, "other"),
    ]  # fmt: skip
    # The same upsert again (a crash, then a retry): no duplicates.
    await put(client, "a", [("uno", [1, 0, 0, 0])])
    assert (await index.collection_stats(client, "col"))["points"] == 2


async def test_delete_document_says_how_many_points_went(client: Any) -> None:
    await put(client, "a", [("one", [1, 0, 0, 0]), ("two", [0, 1, 0, 0])])
    await put(client, "b", [("other", [0, 0, 0, 1])])
    assert await index.delete_document(client, "col", "a") == 2
    assert await index.delete_document(client, "col", "a") == 0
    assert (await index.collection_stats(client, "col"))["points"] == 1


async def test_filters_match_metadata_and_thresholds_bound_cosine(client: Any) -> None:
    await put(client, "en", [("river bank", [1, 0, 0, 0])], lang="en", year=2024)
    await put(client, "de", [("Flussufer", [0.9, 0.1, 0, 0])], lang="de", year=2023)
    await put(client, "fr", [("rive", [0, 1, 0, 0])], lang="fr", year=2024)
    for hybrid in (False, True):

        async def found(filters: dict[str, Any] | None, threshold: float | None) -> list[str]:
            hits = await index.search(
                client, "col", dense=[1, 0, 0, 0], text="river", top_k=5, filters=filters,
                score_threshold=threshold, hybrid=hybrid,  # noqa: B023
            )  # fmt: skip
            return sorted(h.document_id for h in hits)

        assert await found({"lang": "de"}, None) == ["de"]
        assert await found({"year": 2024}, None) == ["en", "fr"]
        assert await found({"lang": ["en", "fr"], "year": 2024}, None) == ["en", "fr"]
        assert await found(None, 0.9) == ["de", "en"]  # "fr" is orthogonal
        assert await found({"lang": "fr"}, 0.5) == []
    with pytest.raises(ValueError, match="filter"):
        await index.search(
            client, "col", dense=[1, 0, 0, 0], text="x", top_k=1, filters={"score": 0.5},
            score_threshold=None, hybrid=False,
        )  # fmt: skip


async def test_hybrid_finds_the_exact_term_dense_ranks_low(client: Any) -> None:
    # Dense vectors alone put the code's runbook last; its code, a rare term, puts it first.
    await put(client, "near", [("restart the service", [1, 0, 0, 0])])
    await put(client, "mid", [("check the dashboard", [0.8, 0.6, 0, 0])])
    await put(client, "code", [("error E4090 means rotate the keys", [0.2, 0.98, 0, 0])])
    ask: dict[str, Any] = {
        "dense": [1.0, 0, 0, 0], "text": "what about E4090", "top_k": 3, "filters": None,
    }  # fmt: skip
    dense = await index.search(client, "col", **ask, score_threshold=None, hybrid=False)
    hybrid = await index.search(client, "col", **ask, score_threshold=None, hybrid=True)
    assert [h.document_id for h in dense] == ["near", "mid", "code"]
    assert hybrid[0].document_id in {"near", "code"}
    assert [h.document_id for h in hybrid].index("code") < 2
    assert dense[0].score == pytest.approx(1.0)
    assert hybrid[0].metadata == {}
