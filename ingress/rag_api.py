"""The retrieval routes, `/v1/rag/*`: collections, index jobs (202 + id, followed on
`GET /v1/requests/{id}`), search, and grounded answers. The RAG worker does the work (it holds
Qdrant); a query's answer is a chat completion accepted here as any other (quota, routing,
fallback, cache), its prompt the worker's numbered sources."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from aibroker.identity import Client
from aibroker.ids import new_id
from ingress.accept import accept
from ingress.auth import authenticate
from ingress.rag_jobs import OperationFailed, op_response, run_op, start_op
from ingress.state import services
from ingress.streaming import sse
from ingress.views import accepted, json_response
from ingress.webhook_targets import request_webhook
from schemas.openai import ChatCompletionRequest
from schemas.rag import CreateCollection, IndexBody, QueryBody, RagOp, SearchBody

router = APIRouter(prefix="/v1/rag", tags=["rag"])
Caller = Annotated[Client, Depends(authenticate)]

PASSED_HEADERS = ("x-request-id", "x-aibroker-request-id", "x-aibroker-cache", "x-aibroker-cost")
"""What a query's answer keeps of its chat completion's answer."""


@router.post("/collections")
async def create_collection(body: CreateCollection, request: Request, caller: Caller) -> Response:
    """A collection bound to an embedding model (its dimension probed once) and a chunking;
    unset fields take the `AIBROKER_RAG_*` defaults."""
    svc = services(request)
    doc = body.model_dump(exclude_unset=True)
    return await op_response(svc, caller, RagOp.CREATE, new_id("vs"), doc)


@router.get("/collections")
async def list_collections(request: Request, caller: Caller) -> Response:
    return await op_response(services(request), caller, RagOp.LIST)


@router.get("/collections/{collection_id}")
async def show_collection(collection_id: str, request: Request, caller: Caller) -> Response:
    """The collection with its counts: points, documents, dimensions, model, bytes indexed."""
    return await op_response(services(request), caller, RagOp.SHOW, collection_id)


@router.delete("/collections/{collection_id}")
async def delete_collection(collection_id: str, request: Request, caller: Caller) -> Response:
    return await op_response(services(request), caller, RagOp.DROP, collection_id)


@router.get("/collections/{collection_id}/documents")
async def list_documents(collection_id: str, request: Request, caller: Caller) -> Response:
    """The collection's documents, each with its indexing status and chunk count."""
    return await op_response(services(request), caller, RagOp.FILES, collection_id)


@router.delete("/collections/{collection_id}/documents/{document_id}")
async def delete_document(
    collection_id: str, document_id: str, request: Request, caller: Caller
) -> Response:
    body = {"document_id": document_id}
    return await op_response(services(request), caller, RagOp.DETACH, collection_id, body)


@router.get("/stats")
async def stats(request: Request, caller: Caller) -> Response:
    """Every collection of the caller's with its Qdrant counts, and the totals."""
    svc = services(request)
    try:
        listed = await run_op(svc, caller, RagOp.LIST)
        shown = [await run_op(svc, caller, RagOp.SHOW, c["id"]) for c in listed["data"]]
    except OperationFailed as failed:
        return failed.response()
    totals = {
        "collections": len(shown),
        "documents": sum(int(c.get("documents", 0)) for c in shown),
        "points": sum(int(c.get("points", 0)) for c in shown),
        "usage_bytes": sum(int(c.get("usage_bytes", 0)) for c in shown),
    }
    return json_response({"object": "rag.stats", **totals, "data": shown})


@router.post("/index", status_code=202)
async def index(body: IndexBody, request: Request, caller: Caller) -> Response:
    """Texts (with metadata) or `/v1/files` ids, indexed by the RAG worker; answered at once
    with the job's id. A document indexed again (same `id`) has its chunks replaced."""
    svc = services(request)
    webhook = await request_webhook(svc, caller, body.webhook, request.headers)
    try:  # another tenant's collection is a 404 now, not a job that fails later
        await run_op(svc, caller, RagOp.SHOW, body.collection, {"stats": False})
    except OperationFailed as failed:
        return failed.response()
    docs = {"documents": [d.model_dump(exclude_none=True) for d in body.documents]}
    job_id = await start_op(svc, caller, RagOp.INDEX, body.collection, docs, webhook=webhook)
    return accepted(job_id)


@router.post("/search")
async def search(body: SearchBody, request: Request, caller: Caller) -> Response:
    """The `top_k` chunks nearest the query (its embedding asked of the pool), with their
    text, score, document and metadata; `filters` match metadata, `hybrid` fuses BM25."""
    doc = body.model_dump(exclude={"collection"})
    return await op_response(services(request), caller, RagOp.SEARCH, body.collection, doc)


@router.post("/query")
async def query(body: QueryBody, request: Request, caller: Caller) -> Response:
    """Search, then a chat completion over the numbered sources found: the answer, the
    sources it may cite as [n], and the time each stage took (embed, search, chat).
    `stream: true`: a first event with the sources, then the completion's chunks."""
    svc = services(request)
    started = time.perf_counter()
    search_body = {
        **body.model_dump(include=set(SearchBody.model_fields) - {"collection"}),
        "grounded": True,
        "instructions": body.instructions,
    }
    try:
        found = await run_op(svc, caller, RagOp.SEARCH, body.collection, search_body)
    except OperationFailed as failed:
        return failed.response()
    timings: dict[str, float] = {
        **found.get("timings", {}),
        "retrieve_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    chat: dict[str, Any] = {"model": body.model, "messages": found["messages"]}
    chat |= body.model_dump(include={"stream", "temperature", "max_tokens"}, exclude_none=True)
    started = time.perf_counter()
    answer = await accept(svc, caller, ChatCompletionRequest.model_validate(chat), request.headers)
    sources = found["sources"]
    if isinstance(answer, StreamingResponse):
        return _with_sources(answer, sources, timings)
    if answer.status_code != 200:
        return answer  # refused, failed, or 202 (`Prefer: respond-async`): as the chat says
    completion = orjson.loads(bytes(answer.body))
    timings["chat_ms"] = round((time.perf_counter() - started) * 1000, 1)
    choices = completion.get("choices") or [{}]
    doc = {
        "object": "rag.answer",
        "id": completion.get("id"),
        "model": completion.get("model"),
        "answer": (choices[0].get("message") or {}).get("content"),
        "sources": sources,
        "timings": timings,
        "usage": completion.get("usage"),
        "completion": completion,
    }
    headers = {k: v for k, v in answer.headers.items() if k in PASSED_HEADERS}
    return Response(orjson.dumps(doc), media_type="application/json", headers=headers)


def _with_sources(
    answer: StreamingResponse, sources: list[dict[str, Any]], timings: dict[str, float]
) -> Response:
    """The chat's stream, after one event of our own: `{"object": "rag.sources", ...}`."""
    chunks = answer.body_iterator

    async def events() -> AsyncIterator[bytes | str | memoryview[int]]:
        yield sse({"object": "rag.sources", "sources": sources, "timings": timings})
        async for chunk in chunks:
            yield chunk

    headers = {k: v for k, v in answer.headers.items() if k in PASSED_HEADERS}
    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache"},
    )
