"""Retrieval's envelopes: the bodies of the `/v1/rag/*` routes, the job an operation travels
as on `rag.jobs` (ingress → RAG worker), and the durable records of `rag.collections` (a
collection's definition, each document's indexing state), which outlive Redis."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from schemas.envelopes import Webhook


class RagOp(StrEnum):
    """What a job asks of the RAG worker."""

    CREATE = "create"
    """Make a collection (probes the model for its dimension)."""
    LIST = "list"
    """The tenant's collections."""
    SHOW = "show"
    """One collection, with its Qdrant counts."""
    DROP = "drop"
    """Delete a collection, its points and its records."""
    INDEX = "index"
    """Extract, chunk, embed and upsert documents (the long one)."""
    ATTACH = "attach"
    """Record a file as a collection's document and queue its index job."""
    FILES = "files"
    """The documents of a collection, with their indexing state."""
    DETACH = "detach"
    """Remove one document and its chunks."""
    SEARCH = "search"
    """Embed a query and search a collection."""


class Chunking(BaseModel):
    size_tokens: int = Field(ge=16, le=4096, description="Tokens per chunk.")
    overlap_tokens: int = Field(ge=0, le=2048, description="Tokens neighbours share.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Chunking:
        if self.overlap_tokens >= self.size_tokens:
            raise ValueError("overlap_tokens must be below size_tokens")
        return self


class CollectionDef(BaseModel):
    """A collection as `rag.collections` keeps it: bound to one embedding model, its
    dimension and its chunking for life (changing them would mix incomparable vectors)."""

    v: Literal[1] = 1
    id: str
    tenant: str
    name: str | None = None
    model: str
    dimension: int = Field(ge=1)
    chunking: Chunking
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: float

    @property
    def qdrant_name(self) -> str:
        """The Qdrant collection: namespaced by tenant, so no name is shared across tenants."""
        return f"aib_rag__{re.sub(r'[^A-Za-z0-9_-]', '_', self.tenant)}__{self.id}"


DocumentStatus = Literal["in_progress", "completed", "failed", "cancelled"]


class DocumentRecord(BaseModel):
    """One document of a collection (a vector store file), as `rag.collections` keeps it."""

    v: Literal[1] = 1
    collection: str
    document_id: str
    tenant: str
    request_id: str
    status: DocumentStatus = "in_progress"
    created_at: float
    filename: str | None = None
    usage_bytes: int = 0
    chunks: int = 0
    attributes: dict[str, Any] = Field(default_factory=dict)
    last_error: dict[str, str] | None = None


class Document(BaseModel):
    """A document to index: its text, or a file of `/v1/files` (text, Markdown, HTML, PDF)."""

    id: str | None = Field(
        default=None,
        max_length=256,
        description="Stable id; indexing it again replaces its chunks. Default: the file id, "
        "or a hash of the text.",
    )
    text: str | None = None
    file_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> Document:
        if (self.text is None) == (self.file_id is None):
            raise ValueError("give exactly one of text and file_id")
        return self


class CreateCollection(BaseModel):
    """`POST /v1/rag/collections`."""

    name: str | None = Field(default=None, max_length=256)
    model: str | None = Field(default=None, description="Embedding model alias.")
    chunk_tokens: int | None = Field(default=None, ge=16, le=4096)
    overlap_tokens: int | None = Field(default=None, ge=0, le=2048)
    metadata: dict[str, str] = Field(default_factory=dict)


class IndexBody(BaseModel):
    """`POST /v1/rag/index`: answered at once with a request id."""

    collection: str
    documents: list[Document] = Field(min_length=1, max_length=1000)
    webhook: Webhook | None = None


class SearchBody(BaseModel):
    """`POST /v1/rag/search`."""

    collection: str
    query: str = Field(min_length=1, max_length=32_000)
    top_k: int = Field(default=5, ge=1)
    filters: dict[str, Any] | None = Field(
        default=None, description="Metadata that must match: `{field: value}`."
    )
    score_threshold: float | None = None
    hybrid: bool = Field(default=False, description="Dense plus BM25 sparse, fused.")


class QueryBody(SearchBody):
    """`POST /v1/rag/query`: search, then a chat completion grounded in what was found."""

    model: str = Field(description="The chat model alias that answers.")
    instructions: str | None = None
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)


class RagJob(BaseModel):
    """One operation on its way to the RAG worker, keyed by collection (a collection's
    operations stay in order). Ends, as every request does, with one result on `results`."""

    v: Literal[1] = 1
    id: str
    tenant: str
    key_id: str | None = None
    user: str | None = None
    op: RagOp
    collection: str | None = None
    body: dict[str, Any] = Field(default_factory=dict)
    webhook: Webhook | None = None
    created_at: float
    deadline: float | None = None
