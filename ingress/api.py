"""The OpenAI-compatible routes (and `/v1/ocr`): parse, `accept`, add the rate-limit headers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from aibroker.identity import Client
from ingress.accept import accept
from ingress.auth import authenticate
from ingress.ratelimit_headers import ratelimit_headers
from ingress.state import services
from ingress.views import json_response
from schemas.bodies import Body
from schemas.openai import ChatCompletionRequest, EmbeddingsRequest, ModerationRequest, OcrRequest

router = APIRouter()
Caller = Annotated[Client, Depends(authenticate)]


@router.post("/v1/chat/completions", tags=["openai"])
async def chat_completions(
    body: ChatCompletionRequest, request: Request, caller: Caller
) -> Response:
    """Synchronous by default (`stream: true`: server-sent events); `Prefer: respond-async`
    answers 202 with the request's id, `Prefer: wait=N` bounds the wait, `Idempotency-Key`
    makes retries safe, `X-Aibroker-Deadline` (Unix time) or `X-Aibroker-Timeout`
    (seconds) sets a deadline after which it never runs (it ends `expired`, 408)."""
    return await _accept(request, caller, body)


@router.post("/v1/embeddings", tags=["openai"])
async def embeddings(body: EmbeddingsRequest, request: Request, caller: Caller) -> Response:
    """Vectors for a string, a list of strings or token ids, from a local embeddings pool
    (micro-batched with other requests) or a provider's embedding model (OpenAI-compatible,
    Gemini). `Prefer` and `Idempotency-Key` as for chat. With `store: {collection, ids?,
    payloads?}` the vectors are also written to Qdrant (local pools only)."""
    return await _accept(request, caller, body)


@router.post("/v1/moderations", tags=["openai"])
async def moderations(body: ModerationRequest, request: Request, caller: Caller) -> Response:
    """Whether texts (or text and image parts) break a provider's usage policies, with a
    score per category, from an OpenAI-compatible provider's moderation model
    (`omni-moderation-latest`), routed, retried and billed like any request. `Prefer` and
    `Idempotency-Key` as for chat."""
    return await _accept(request, caller, body)


@router.post("/v1/ocr", tags=["broker"])
async def ocr(body: OcrRequest, request: Request, caller: Caller) -> Response:
    """Text lines (with boxes and confidences) and the joined text of one image, given as
    base64 (`image`) or fetched by the OCR pool from a public `image_url`. Answers
    `{"object": "ocr.result", "model", "text", "lines": [{"text", "confidence", "box"}],
    "width", "height", "usage"}`. `Prefer` and `Idempotency-Key` as for chat."""
    return await _accept(request, caller, body)


async def _accept(request: Request, caller: Client, body: Body) -> Response:
    """Accepted as on every route, answered with `x-ratelimit-*` as OpenAI sends them."""
    svc = services(request)
    answer = await accept(svc, caller, body, request.headers)
    answer.headers.update(await ratelimit_headers(svc, caller))
    return answer


@router.get("/v1/models", tags=["openai"])
async def list_models(request: Request, _: Caller) -> Response:
    routes = services(request).routes
    data: list[dict[str, Any]] = [
        {"id": name, "object": "model", "created": 0, "owned_by": "aibroker"}
        for name in routes.known_models()
    ]
    return json_response({"object": "list", "data": data})
