"""The OpenAI-compatible routes: parse, call a flow, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from aibroker.keys import KeyInfo
from aibroker.routes import resolve
from ingress.auth import authenticate
from ingress.flows import submit_once
from ingress.prefer import parse_prefer
from ingress.state import services
from ingress.views import json_response
from schemas.envelopes import Kind, Mode
from schemas.openai import ChatCompletionRequest

router = APIRouter()
Caller = Annotated[KeyInfo, Depends(authenticate)]


@router.post("/v1/chat/completions", tags=["openai"])
async def chat_completions(
    body: ChatCompletionRequest, request: Request, caller: Caller
) -> Response:
    """Synchronous by default (`stream: true`: server-sent events); `Prefer: respond-async`
    answers 202 with the request's id, `Prefer: wait=N` bounds the wait, `Idempotency-Key`
    makes retries safe."""
    svc = services(request)
    resolve(body.model, svc.routes)
    prefer = parse_prefer(request.headers.getlist("prefer"))
    limit = svc.settings.ingress.sync_wait_s
    wait = None if prefer.respond_async else min(prefer.wait_s or limit, limit)
    payload = body.model_dump(exclude_unset=True)
    mode = Mode.ASYNC if wait is None else Mode.SYNC
    envelope = svc.submitter.envelope(caller, Kind.CHAT, body.model, payload, mode)
    return await submit_once(svc, request.headers, "/v1/chat/completions", payload, envelope, wait)


@router.get("/v1/models", tags=["openai"])
async def list_models(request: Request, _: Caller) -> Response:
    routes = services(request).routes
    data: list[dict[str, Any]] = [
        {"id": name, "object": "model", "created": 0, "owned_by": "aibroker"}
        for name in routes.known_models()
    ]
    return json_response({"object": "list", "data": data})
