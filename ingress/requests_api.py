"""The broker-native request routes: async submit, status and long-poll, cancel."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import Response

from aibroker.identity import Client
from ingress.accept import Wrapper, accept
from ingress.auth import authenticate
from ingress.state import services
from ingress.views import json_response
from schemas.bodies import BODIES, Body
from schemas.envelopes import Webhook
from schemas.status import status_document

router = APIRouter(tags=["broker"])
Caller = Annotated[Client, Depends(authenticate)]


class SubmitRequest(BaseModel):
    """`POST /v1/requests`: an endpoint's body, submitted asynchronously."""

    endpoint: Literal["/v1/chat/completions", "/v1/embeddings", "/v1/ocr", "/v1/moderations"]
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
    """Any endpoint's body, accepted as that endpoint would accept it, answered with 202."""
    wrapper = Wrapper(deadline=body.deadline, webhook=body.webhook)
    return await accept(services(request), caller, _parsed(body), request.headers, wrapper)


def _parsed(body: SubmitRequest) -> Body:
    """The endpoint's body, validated as the endpoint validates it; errors located under `body`."""
    _, body_type = BODIES[body.endpoint]
    try:
        return body_type.model_validate(body.body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", "body", *e["loc"])} for e in exc.errors()]
        ) from exc


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
