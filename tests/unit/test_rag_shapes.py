"""The RAG surfaces' pure parts: bodies and records as validated, document ids, vectors read
from an embeddings result, OpenAI's vector store shapes and filters."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest
from openai.types import VectorStore
from openai.types.vector_stores import VectorStoreFile
from pydantic import ValidationError

from aibroker.errors import InvalidRequest
from consumers.rag.indexing import document_id
from ingress.vector_stores_api import eq_filters, vector_store, vector_store_file
from schemas.envelopes import Result, Status
from schemas.rag import Chunking, CollectionDef, Document
from schemas.vectors import vectors_of

pytestmark = pytest.mark.unit


def test_a_document_has_exactly_one_source() -> None:
    assert Document(text="a").text == "a"
    assert Document(file_id="file-1").file_id == "file-1"
    for body in ({}, {"text": "a", "file_id": "file-1"}):
        with pytest.raises(ValidationError, match="exactly one"):
            Document.model_validate(body)


def test_chunk_overlap_stays_below_the_size() -> None:
    assert Chunking(size_tokens=64, overlap_tokens=63).overlap_tokens == 63
    with pytest.raises(ValidationError, match="below size_tokens"):
        Chunking(size_tokens=64, overlap_tokens=64)


def test_qdrant_names_are_namespaced_by_tenant() -> None:
    def named(tenant: str) -> str:
        chunking = Chunking(size_tokens=64, overlap_tokens=8)
        c = CollectionDef(
            id="vs_1", tenant=tenant, model="m", dimension=3, chunking=chunking, created_at=0
        )
        return c.qdrant_name

    assert named("acme") == "aib_rag__acme__vs_1"
    assert named("acme") != named("other")
    assert named("a/b c") == "aib_rag__a_b_c__vs_1"  # no path or space in a local-mode dir


def test_a_document_id_is_its_own_its_files_or_its_texts() -> None:
    assert document_id(Document(id="x", text="a")) == "x"
    assert document_id(Document(file_id="file-1")) == "file-1"
    same = document_id(Document(text="some text"))
    assert same == document_id(Document(text="some text"))
    assert same != document_id(Document(text="other text"))


def _result(data: Any, status: Status = Status.SUCCEEDED) -> Result:
    return Result(id="r", tenant="t", status=status, response={"data": data}, finished_at=0)


def test_vectors_are_read_by_index_from_base64_or_lists() -> None:
    packed = base64.b64encode(struct.pack("<2f", 0.5, -1.0)).decode()
    data = [{"index": 1, "embedding": [3, 4]}, {"index": 0, "embedding": packed}]
    assert vectors_of(_result(data)) == [[0.5, -1.0], [3.0, 4.0]]
    assert vectors_of(_result(data, Status.FAILED)) is None
    assert vectors_of(_result([{"index": 0, "embedding": None}])) is None


def test_openai_eq_filters_become_metadata_equality() -> None:
    assert eq_filters(None) is None
    assert eq_filters({"type": "eq", "key": "lang", "value": "en"}) == {"lang": "en"}
    both = {
        "type": "and",
        "filters": [
            {"type": "eq", "key": "lang", "value": "en"},
            {"type": "eq", "key": "v", "value": 2},
        ],
    }
    assert eq_filters(both) == {"lang": "en", "v": 2}
    gt = {"type": "gt", "key": "v", "value": 1}
    for refused in (gt, {"type": "and", "filters": [gt]}, {"type": "or", "filters": [both]}):
        with pytest.raises(InvalidRequest):
            eq_filters(refused)


def test_vector_store_shapes_match_the_sdk_types() -> None:
    counts = {"in_progress": 1, "completed": 2, "failed": 0, "cancelled": 0, "total": 3}
    store = vector_store(
        {"id": "vs_1", "created_at": 5, "name": None, "usage_bytes": 10, "document_counts": counts}
    )
    parsed = VectorStore.model_validate(store)
    assert parsed.status == "in_progress"
    assert parsed.file_counts.total == 3
    record = {
        "document_id": "file-1",
        "collection": "vs_1",
        "created_at": 5.5,
        "status": "failed",
        "last_error": {"code": "documents_failed", "message": "bad"},
    }
    file = VectorStoreFile.model_validate(vector_store_file(record))
    assert file.last_error is not None
    assert file.last_error.code == "server_error"  # a code of ours the SDK does not know
