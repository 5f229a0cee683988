"""OpenAI's vector stores over the same collections as `/v1/rag/*`, so the unmodified
`openai` SDK works (`client.vector_stores.create`, `.files.upload_and_poll`, `.search`): a
vector store is a collection, a vector store file a document whose id is its file's. Shapes
as the SDK's types (`openai/types/vector_store*.py`) read them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from aibroker.errors import InvalidRequest, NotFound
from aibroker.identity import Client
from aibroker.ids import new_id
from ingress.auth import authenticate
from ingress.rag_jobs import OperationFailed, op_response, run_op
from ingress.state import services
from ingress.views import json_response
from schemas.rag import RagOp

router = APIRouter(prefix="/v1/vector_stores", tags=["openai"])
Caller = Annotated[Client, Depends(authenticate)]

LAST_ERROR_CODES = {"server_error", "unsupported_file", "invalid_file"}


class StaticChunking(BaseModel):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)


class ChunkingStrategy(BaseModel):
    type: Literal["auto", "static"] = "auto"
    static: StaticChunking | None = None


class CreateVectorStore(BaseModel):
    name: str | None = None
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    metadata: dict[str, str] | None = None
    chunking_strategy: ChunkingStrategy | None = None
    description: str | None = None


class CreateFile(BaseModel):
    file_id: str
    attributes: dict[str, str | float | bool] | None = None
    chunking_strategy: ChunkingStrategy | None = None


class RankingOptions(BaseModel):
    ranker: str | None = None
    score_threshold: float | None = None


class SearchVectorStore(BaseModel):
    query: str | list[str]
    filters: dict[str, Any] | None = None
    max_num_results: int = Field(default=10, ge=1, le=50)
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False


def vector_store(c: dict[str, Any]) -> dict[str, Any]:
    counts = c.get("document_counts") or {}
    return {
        "id": c["id"],
        "object": "vector_store",
        "created_at": c["created_at"],
        "name": c.get("name") or "",
        "usage_bytes": c.get("usage_bytes", 0),
        "file_counts": {
            k: counts.get(k, 0)
            for k in ("in_progress", "completed", "failed", "cancelled", "total")
        },
        "status": "in_progress" if counts.get("in_progress") else "completed",
        "last_active_at": c["created_at"],
        "metadata": c.get("metadata") or {},
        "expires_after": None,
        "expires_at": None,
    }


def vector_store_file(d: dict[str, Any]) -> dict[str, Any]:
    error = d.get("last_error")
    if error:
        code = error.get("code")
        error = {**error, "code": code if code in LAST_ERROR_CODES else "server_error"}
    return {
        "id": d["document_id"],
        "object": "vector_store.file",
        "created_at": int(d["created_at"]),
        "vector_store_id": d["collection"],
        "status": d["status"],
        "last_error": error,
        "usage_bytes": d.get("usage_bytes", 0),
        "attributes": d.get("attributes") or {},
    }


def _page(data: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": False,
    }


def _chunking(strategy: ChunkingStrategy | None) -> dict[str, int]:
    if strategy is None or strategy.type == "auto" or strategy.static is None:
        return {}
    return {
        "chunk_tokens": strategy.static.max_chunk_size_tokens,
        "overlap_tokens": strategy.static.chunk_overlap_tokens,
    }


@router.post("")
async def create(body: CreateVectorStore, request: Request, caller: Caller) -> Response:
    """A collection with the default embedding model, then each of `file_ids` attached."""
    svc = services(request)
    doc: dict[str, Any] = {"name": body.name, "metadata": body.metadata or {}}
    doc |= _chunking(body.chunking_strategy)
    try:
        made = await run_op(svc, caller, RagOp.CREATE, new_id("vs"), doc)
        for file_id in body.file_ids:
            await run_op(svc, caller, RagOp.ATTACH, made["id"], {"file_id": file_id})
        if body.file_ids:
            made = await run_op(svc, caller, RagOp.SHOW, made["id"])
    except OperationFailed as failed:
        return failed.response()
    return json_response(vector_store(made))


@router.get("")
async def list_stores(
    request: Request, caller: Caller, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> Response:
    def shape(listed: dict[str, Any]) -> dict[str, Any]:
        return _page([vector_store(c) for c in listed["data"][:limit]])

    return await op_response(services(request), caller, RagOp.LIST, shape=shape)


@router.get("/{store_id}")
async def retrieve(store_id: str, request: Request, caller: Caller) -> Response:
    return await op_response(services(request), caller, RagOp.SHOW, store_id, shape=vector_store)


@router.delete("/{store_id}")
async def delete(store_id: str, request: Request, caller: Caller) -> Response:
    def shape(_: dict[str, Any]) -> dict[str, Any]:
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    return await op_response(services(request), caller, RagOp.DROP, store_id, shape=shape)


@router.post("/{store_id}/files")
async def add_file(store_id: str, body: CreateFile, request: Request, caller: Caller) -> Response:
    """The file attached (`in_progress`) and its index job queued; poll it for `status`."""
    doc = {"file_id": body.file_id, "attributes": body.attributes or {}}
    svc = services(request)
    return await op_response(svc, caller, RagOp.ATTACH, store_id, doc, shape=vector_store_file)


@router.get("/{store_id}/files")
async def list_files(
    store_id: str, request: Request, caller: Caller, limit: Annotated[int, Query(ge=1)] = 20
) -> Response:
    def shape(listed: dict[str, Any]) -> dict[str, Any]:
        return _page([vector_store_file(d) for d in listed["data"][:limit]])

    return await op_response(services(request), caller, RagOp.FILES, store_id, shape=shape)


@router.get("/{store_id}/files/{file_id}")
async def retrieve_file(store_id: str, file_id: str, request: Request, caller: Caller) -> Response:
    try:
        listed = await run_op(services(request), caller, RagOp.FILES, store_id)
    except OperationFailed as failed:
        return failed.response()
    for d in listed["data"]:
        if d["document_id"] == file_id:
            return json_response(vector_store_file(d))
    raise NotFound(f"No file {file_id} in vector store {store_id}.", param="file_id")


@router.delete("/{store_id}/files/{file_id}")
async def delete_file(store_id: str, file_id: str, request: Request, caller: Caller) -> Response:
    def shape(_: dict[str, Any]) -> dict[str, Any]:
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    body = {"document_id": file_id}
    svc = services(request)
    return await op_response(svc, caller, RagOp.DETACH, store_id, body, shape=shape)


@router.post("/{store_id}/search")
async def search(
    store_id: str, body: SearchVectorStore, request: Request, caller: Caller
) -> Response:
    """Hybrid search (dense and BM25, fused), as OpenAI's is; `filters` of `eq` comparisons
    (alone or under `and`) match file attributes."""
    query = body.query if isinstance(body.query, str) else " ".join(body.query)
    options = body.ranking_options
    doc = {
        "query": query,
        "top_k": body.max_num_results,
        "filters": eq_filters(body.filters),
        "score_threshold": options.score_threshold if options else None,
        "hybrid": True,
    }

    def shape(found: dict[str, Any]) -> dict[str, Any]:
        data = [
            {
                "file_id": h["document_id"],
                "filename": h["metadata"].get("filename") or h["document_id"],
                "score": h["score"],
                "attributes": {k: v for k, v in h["metadata"].items() if k != "filename"},
                "content": [{"type": "text", "text": h["text"]}],
            }
            for h in found["data"]
        ]
        return {
            "object": "vector_store.search_results.page",
            "search_query": [query],
            "data": data,
            "has_more": False,
            "next_page": None,
        }

    return await op_response(services(request), caller, RagOp.SEARCH, store_id, doc, shape=shape)


def eq_filters(given: dict[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI's comparison filters as equality on metadata: `{"type": "eq", "key", "value"}`,
    or an `and` of those. Anything else is refused rather than ignored."""
    if not given:
        return None
    parts = given.get("filters") if given.get("type") == "and" else [given]
    found: dict[str, Any] = {}
    for part in parts or []:
        if not isinstance(part, dict) or part.get("type") != "eq" or "key" not in part:
            raise InvalidRequest(
                "Only `eq` comparisons, alone or under `and`, are supported.", param="filters"
            )
        found[str(part["key"])] = part.get("value")
    return found
