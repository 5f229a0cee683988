"""The routes: parse, call a service, shape the answer. No decisions live here."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from starlette.responses import Response

from aibroker.errors import InvalidRequest, NotFound, Unavailable
from aibroker.keys import KeyInfo
from aibroker.routes import resolve
from aibroker.store import RequestState
from ingress.auth import authenticate
from ingress.prefer import parse_prefer
from ingress.state import Services, services
from ingress.views import accepted, json_response, result_response, status_document
from schemas.envelopes import Kind, Mode
from schemas.envelopes import Request as Envelope
from schemas.openai import ChatCompletionRequest

router = APIRouter()
Caller = Annotated[KeyInfo, Depends(authenticate)]
STATE_REREAD_S = 5.0


class SubmitRequest(BaseModel):
    """`POST /v1/requests`: any endpoint's body, submitted asynchronously."""

    endpoint: Literal["/v1/chat/completions"]
    body: ChatCompletionRequest
    deadline: float | None = Field(default=None, description="Unix time after which it expires.")


@router.post("/v1/chat/completions", tags=["openai"])
async def chat_completions(
    body: ChatCompletionRequest, request: Request, caller: Caller
) -> Response:
    svc = services(request)
    if body.stream:
        raise InvalidRequest(
            "stream=true is not served by this broker version yet.", param="stream"
        )
    resolve(body.model, svc.routes)
    prefer = parse_prefer(request.headers.getlist("prefer"))
    mode = Mode.ASYNC if prefer.respond_async else Mode.SYNC
    envelope = svc.submitter.envelope(
        caller, Kind.CHAT, body.model, body.model_dump(exclude_unset=True), mode
    )
    if mode is Mode.ASYNC:
        await svc.submitter.submit(envelope)
        return accepted(envelope.id)
    wait = min(
        prefer.wait_s if prefer.wait_s is not None else svc.settings.ingress.sync_wait_s,
        svc.settings.ingress.sync_wait_s,
    )
    return await _submit_and_wait(svc, envelope, wait)


async def _submit_and_wait(svc: Services, envelope: Envelope, wait_s: float) -> Response:
    with svc.replies.expect(envelope.id) as reply:
        await svc.submitter.submit(envelope)
        try:
            result = await asyncio.wait_for(reply, wait_s)
        except TimeoutError:
            return accepted(envelope.id)
    return result_response(result)


@router.post("/v1/requests", status_code=202, tags=["broker"])
async def submit_request(body: SubmitRequest, request: Request, caller: Caller) -> Response:
    svc = services(request)
    resolve(body.body.model, svc.routes)
    envelope = svc.submitter.envelope(
        caller,
        Kind.CHAT,
        body.body.model,
        body.body.model_dump(exclude_unset=True),
        Mode.ASYNC,
        deadline=body.deadline,
    )
    await svc.submitter.submit(envelope)
    return accepted(envelope.id)


@router.get("/v1/requests/{request_id}", tags=["broker"])
async def get_request(
    request_id: str,
    request: Request,
    caller: Caller,
    wait: Annotated[float, Query(ge=0, description="Seconds to long-poll.")] = 0,
) -> Response:
    """The request's status; with `wait`, answers as soon as it ends or after `wait` s."""
    svc = services(request)
    state = await _read(svc, request_id, caller)
    deadline = time.monotonic() + min(wait, svc.settings.ingress.max_poll_wait_s)
    if not state.status.terminal and wait > 0:
        async with svc.notices.watch(request_id) as done:
            state = await _read(svc, request_id, caller)
            while not state.status.terminal and (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), min(left, STATE_REREAD_S))
                state = await _read(svc, request_id, caller)
    return json_response(status_document(request_id, state.status, state.result))


async def _read(svc: Services, request_id: str, caller: KeyInfo) -> RequestState:
    try:
        state = await svc.store.get(request_id)
    except RedisError as exc:
        raise Unavailable("Request state is unavailable right now.", retry_after=2) from exc
    if state is None or state.tenant != caller.tenant:
        raise NotFound(f"No request with id '{request_id}'.", param="id")
    return state


@router.get("/v1/models", tags=["openai"])
async def list_models(request: Request, _: Caller) -> Response:
    routes = services(request).routes
    data: list[dict[str, Any]] = [
        {"id": name, "object": "model", "created": 0, "owned_by": "aibroker"}
        for name in routes.known_models()
    ]
    return json_response({"object": "list", "data": data})
