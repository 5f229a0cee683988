"""The broker-native request routes: async submit, status and long-poll, cancel."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import Response

from aibroker.identity import Client
from aibroker.netguard import host_and_port
from ingress.auth import authenticate, check_model
from ingress.deadline import request_deadline
from ingress.state import services
from ingress.views import json_response
from ingress.webhooks import request_webhook
from schemas.bodies import BODIES
from schemas.envelopes import Mode, Webhook
from schemas.openai import OcrRequest
from schemas.status import status_document

router = APIRouter(tags=["broker"])
Caller = Annotated[Client, Depends(authenticate)]


class SubmitRequest(BaseModel):
    """`POST /v1/requests`: an endpoint's body, submitted asynchronously."""

    endpoint: Literal["/v1/chat/completions", "/v1/embeddings", "/v1/ocr"]
    body: dict[str, Any] = Field(description="The body the endpoint itself would take.")
    deadline: float | None = Field(default=None, description="Unix time after which it expires.")
    webhook: Webhook | None = Field(
        default=None, description="Announce the request's end here (signed, retried)."
    )


ACCEPTED_LINKS: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted: the request is on Kafka; follow it at its `url`.",
        "links": {
            "GetRequest": {
                "operationId": "get_request",
                "parameters": {"request_id": "$response.body#/id"},
            },
            "CancelRequest": {
                "operationId": "cancel_request",
                "parameters": {"request_id": "$response.body#/id"},
            },
        },
    }
}
"""OpenAPI links: submit → poll → cancel (what stateful API testers follow)."""


@router.post("/v1/requests", status_code=202, responses=ACCEPTED_LINKS)
async def submit_request(body: SubmitRequest, request: Request, caller: Caller) -> Response:
    svc = services(request)
    kind, model_type = BODIES[body.endpoint]
    try:
        parsed = model_type.model_validate(body.body)
    except ValidationError as exc:  # reported like any invalid body, located under `body`
        raise RequestValidationError(
            [{**e, "loc": ("body", "body", *e["loc"])} for e in exc.errors()]
        ) from exc
    if isinstance(parsed, OcrRequest) and parsed.image_url is not None:
        host_and_port(parsed.image_url, "body.image_url")  # refused here if unfetchable
    await check_model(svc, caller, parsed.model, kind)
    payload = parsed.model_dump(exclude_unset=True)
    deadline = request_deadline(request.headers, time.time(), body.deadline)
    webhook = await request_webhook(svc, caller, body.webhook, request.headers)
    envelope = svc.submission.envelope(
        caller, kind, parsed.model, payload, Mode.ASYNC, deadline=deadline, webhook=webhook
    )
    return await svc.submission.submit(envelope, None, request.headers.get("idempotency-key"))


@router.get("/v1/requests/{request_id}", operation_id="get_request")
async def get_request(
    request_id: str,
    request: Request,
    caller: Caller,
    wait: Annotated[float, Query(ge=0, description="Seconds to long-poll.")] = 0,
) -> Response:
    """The request's status; with `wait`, answers as soon as it ends or after `wait` s."""
    svc = services(request)
    wait_s = min(wait, svc.settings.ingress.max_poll_wait_s)
    state = await svc.submission.wait_for_end(request_id, caller.tenant, wait_s)
    return json_response(status_document(request_id, state.status, state.result))


@router.delete("/v1/requests/{request_id}", operation_id="cancel_request")
async def cancel_request(request_id: str, request: Request, caller: Caller) -> Response:
    """Cancel a request that has not ended: queued work never starts; work already running
    finishes but its result is discarded. Answers the request's state once it has ended."""
    state = await services(request).submission.cancel(request_id, caller.tenant)
    return json_response(status_document(request_id, state.status, state.result))
