"""The OpenAI-compatible routes (and `/v1/ocr`): parse, call a flow, shape the answer."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from aibroker.errors import InvalidRequest
from aibroker.identity import Client
from aibroker.netguard import host_and_port
from aibroker.routes import LOCAL_ENGINES, resolve
from ingress.auth import authenticate, check_model
from ingress.deadline import request_deadline
from ingress.prefer import parse_prefer
from ingress.ratelimit_headers import ratelimit_headers
from ingress.state import services
from ingress.views import json_response
from ingress.webhooks import request_webhook
from schemas.envelopes import Kind, Mode
from schemas.openai import ChatCompletionRequest, EmbeddingsRequest, OcrRequest

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
    return await _submit(
        request, caller, Kind.CHAT, body.model, body.model_dump(exclude_unset=True)
    )


@router.post("/v1/embeddings", tags=["openai"])
async def embeddings(body: EmbeddingsRequest, request: Request, caller: Caller) -> Response:
    """Vectors for a string, a list of strings or token ids, from a local embeddings pool
    (micro-batched with other requests) or a provider's embedding model (OpenAI-compatible,
    Gemini). `Prefer` and `Idempotency-Key` as for chat. With `store: {collection, ids?,
    payloads?}` the vectors are also written to Qdrant (local pools only)."""
    svc = services(request)
    if body.store is not None:
        if not svc.settings.embeddings.qdrant_url:
            raise InvalidRequest("No vector store is configured for embeddings.", param="store")
        if any(t.provider not in LOCAL_ENGINES for t in resolve(body.model, svc.routes).targets):
            raise InvalidRequest(
                f"`store` is served by local embeddings pools only, and '{body.model}' may "
                "be sent to a provider.",
                param="store",
            )
    return await _submit(
        request, caller, Kind.EMBEDDINGS, body.model, body.model_dump(exclude_unset=True)
    )


@router.post("/v1/ocr", tags=["broker"])
async def ocr(body: OcrRequest, request: Request, caller: Caller) -> Response:
    """Text lines (with boxes and confidences) and the joined text of one image, given as
    base64 (`image`) or fetched by the OCR pool from a public `image_url`. Answers
    `{"object": "ocr.result", "model", "text", "lines": [{"text", "confidence", "box"}],
    "width", "height", "usage"}`. `Prefer` and `Idempotency-Key` as for chat."""
    if body.image_url is not None:
        host_and_port(body.image_url, "image_url")  # refused here if no pool could fetch it
    return await _submit(request, caller, Kind.OCR, body.model, body.model_dump(exclude_unset=True))


async def _submit(
    request: Request, caller: Client, kind: Kind, model: str, payload: dict[str, Any]
) -> Response:
    svc = services(request)
    await check_model(svc, caller, model, kind)
    prefer = parse_prefer(request.headers.getlist("prefer"))
    limit = svc.settings.ingress.sync_wait_s
    wait = None if prefer.respond_async else min(prefer.wait_s or limit, limit)
    mode = Mode.ASYNC if wait is None else Mode.SYNC
    deadline = request_deadline(request.headers, time.time())
    webhook = await request_webhook(svc, caller, None, request.headers)
    envelope = svc.submission.envelope(
        caller, kind, model, payload, mode, deadline=deadline, webhook=webhook
    )
    answer = await svc.submission.submit(envelope, wait, request.headers.get("idempotency-key"))
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
