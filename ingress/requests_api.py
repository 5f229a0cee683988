"""The broker-native request routes: async submit, status and long-poll, cancel."""

from __future__ import annotations

import contextlib
import time
from typing import Annotated, Literal

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from aibroker.keys import KeyInfo
from aibroker.publish import cancelled_error
from aibroker.routes import resolve
from ingress.auth import authenticate
from ingress.flows import read_state, submit_once, wait_for_end
from ingress.state import services
from ingress.views import json_response, status_document
from schemas.envelopes import Kind, Mode, Result, Status
from schemas.openai import ChatCompletionRequest

router = APIRouter(tags=["broker"])
Caller = Annotated[KeyInfo, Depends(authenticate)]
CANCEL_WAIT_S = 5.0


class SubmitRequest(BaseModel):
    """`POST /v1/requests`: an endpoint's body, submitted asynchronously."""

    endpoint: Literal["/v1/chat/completions"]
    body: ChatCompletionRequest
    deadline: float | None = Field(default=None, description="Unix time after which it expires.")


@router.post("/v1/requests", status_code=202)
async def submit_request(body: SubmitRequest, request: Request, caller: Caller) -> Response:
    svc = services(request)
    resolve(body.body.model, svc.routes)
    payload = body.body.model_dump(exclude_unset=True)
    envelope = svc.submitter.envelope(
        caller, Kind.CHAT, body.body.model, payload, Mode.ASYNC, deadline=body.deadline
    )
    return await submit_once(svc, request.headers, body.endpoint, payload, envelope, None)


@router.get("/v1/requests/{request_id}")
async def get_request(
    request_id: str,
    request: Request,
    caller: Caller,
    wait: Annotated[float, Query(ge=0, description="Seconds to long-poll.")] = 0,
) -> Response:
    """The request's status; with `wait`, answers as soon as it ends or after `wait` s."""
    svc = services(request)
    state = await wait_for_end(
        svc, request_id, caller.tenant, min(wait, svc.settings.ingress.max_poll_wait_s)
    )
    return json_response(status_document(request_id, state.status, state.result))


@router.delete("/v1/requests/{request_id}")
async def cancel_request(request_id: str, request: Request, caller: Caller) -> Response:
    """Cancel a request that has not ended: queued work never starts; work already running
    finishes but its result is discarded. Answers the request's state once it has ended."""
    svc = services(request)
    state = await read_state(svc, request_id, caller.tenant)
    if not state.status.terminal:
        flagged = await svc.store.request_cancel(request_id)
        if flagged:
            cancelled = Result(
                id=request_id,
                tenant=caller.tenant,
                status=Status.CANCELLED,
                error=cancelled_error(),
                finished_at=time.time(),
            )
            with contextlib.suppress(KafkaError):  # the flag alone stops queued work
                await svc.publisher.result(cancelled, None)
        state = await wait_for_end(svc, request_id, caller.tenant, CANCEL_WAIT_S)
    return json_response(status_document(request_id, state.status, state.result))
