"""OpenAI's Responses API: `POST /v1/responses` through the one accept pipeline (synchronous,
or `background: true` answered at once with the Response object `queued`), and the stored
response read, cancelled and deleted by its id (`resp_...`, the request's own)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from aibroker import responses_history as history
from aibroker import responses_wire as wire
from aibroker.errors import InvalidRequest, NotFound, Unavailable
from aibroker.identity import Client
from aibroker.ids import created_at
from aibroker.responses_deleted import deletion
from aibroker.stores.results import RequestState
from ingress.accept import accept
from ingress.audit import request_id_of, source_of
from ingress.auth import authenticate
from ingress.ratelimit_headers import ratelimit_headers
from ingress.responses_resume import replay
from ingress.state import Services, services
from ingress.views import accepted_headers, json_response
from schemas.audit import ANONYMOUS
from schemas.envelopes import Result, Status
from schemas.responses import ResponsesRequest, ResponseStatus

router = APIRouter()
Caller = Annotated[Client, Depends(authenticate)]

STATUSES = {
    Status.QUEUED: ResponseStatus.QUEUED,
    Status.RUNNING: ResponseStatus.IN_PROGRESS,
    Status.SUCCEEDED: ResponseStatus.COMPLETED,
    Status.FAILED: ResponseStatus.FAILED,
    Status.CANCELLED: ResponseStatus.CANCELLED,
    Status.EXPIRED: ResponseStatus.FAILED,
}
"""A request's status as a Response's (an expired deadline is a failure, with its error)."""


@router.post("/v1/responses", tags=["openai"])
async def create_response(body: ResponsesRequest, request: Request, caller: Caller) -> Response:
    """Synchronous by default: the Response object once the model answered. `background:
    true` (or `Prefer: respond-async`) answers at once with the Response object `queued`
    (200 for `background`, as OpenAI does; 202 for `Prefer`); poll `GET /v1/responses/{id}`.
    `Idempotency-Key`, `Prefer: wait=N` and deadlines as for chat."""
    svc = services(request)
    answer = await accept(svc, caller, body, request.headers)
    answer.headers.update(await ratelimit_headers(svc, caller))
    if answer.status_code != 202:
        return answer  # the Response object, or an error object
    doc = orjson.loads(answer.body)
    sent = body.model_dump(exclude_unset=True)
    status = STATUSES[Status(doc["status"])]
    response = wire.shell(sent, doc["id"], created_at(doc["id"]) or time.time(), status)
    if status is ResponseStatus.COMPLETED:  # answered at once (the response cache)
        state = await svc.submission.state(doc["id"], caller.tenant, known=True)
        response = _rendered(state)
    reply = json_response(response, 200 if body.background else 202)
    reply.headers.update({k: v for k, v in answer.headers.items() if k.startswith("x-")})
    reply.headers["Location"] = f"/v1/responses/{doc['id']}"
    return reply


@router.get("/v1/responses/{response_id}", tags=["openai"])
async def get_response(
    response_id: str,
    request: Request,
    caller: Caller,
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=-1)] = None,
) -> Response:
    """The Response object as it stands: `queued`, `in_progress`, or how it ended (with the
    request's fields while it runs, for a stored response). `stream=true`: its events from
    `starting_after` on, then live ones until the end (past the end: the end event only)."""
    state = await _state(request, caller, response_id)
    svc = services(request)
    stored = await svc.submission.responses.get(response_id) if svc.submission.responses else None
    body = stored.body if stored is not None else {}
    if not stream:
        return _answer(state, body)
    if svc.submission.responses is None:
        raise InvalidRequest("Streams are not kept here.", param="stream")

    async def read_state() -> RequestState:
        return await _state(request, caller, response_id)

    after = -1 if starting_after is None else starting_after
    return replay(svc.submission.responses, read_state, body, response_id, after)


@router.get("/v1/responses/{response_id}/input_items", tags=["openai"])
async def list_input_items(
    response_id: str,
    request: Request,
    caller: Caller,
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=history.MAX_LIMIT)] = 20,
    after: str | None = None,
) -> Response:
    """The items of a stored response's own input (not those `previous_response_id`
    prepended), in OpenAI's list shape."""
    await _state(request, caller, response_id)
    store = services(request).submission.responses
    stored = await store.get(response_id) if store is not None else None
    if stored is None or stored.tenant != caller.tenant:
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
    context = 0
    if named := stored.body.get("previous_response_id"):
        previous = await store.get(named) if store is not None else None
        if previous is not None:
            context = history.context_size(previous.body, previous.output or [])
    items = history.own_input(stored.body, context)
    shown = [history.listed_item(item, response_id, i) for i, item in enumerate(items)]
    return json_response(history.page(shown, order, limit, after))


@router.post("/v1/responses/{response_id}/cancel", tags=["openai"])
async def cancel_response(response_id: str, request: Request, caller: Caller) -> Response:
    """Cancel a response that has not ended (it ends `cancelled`); one that has is answered
    as it ended."""
    state = await _state(request, caller, response_id)
    if not state.status.terminal:
        state = await services(request).submission.cancel(response_id, caller.tenant)
    return _answer(state)


@router.delete("/v1/responses/{response_id}", tags=["openai"])
async def delete_response(response_id: str, request: Request, caller: Caller) -> Response:
    """Forget a response (one still running is cancelled first); later reads are 404, after
    a rebuild of Redis from Kafka too: the deletion is written to the audit log first
    (`aibroker.responses_deleted`; Kafka down: 503, nothing deleted)."""
    await _state(request, caller, response_id)
    svc = services(request)
    entry = deletion(
        response_id,
        caller.tenant,
        actor=caller.key_id or ANONYMOUS,
        at=time.time(),
        source=source_of(request),
        request_id=request_id_of(request),
    )
    try:
        await svc.publisher.audit(entry)
    except KafkaError as exc:
        raise Unavailable("The broker cannot delete responses right now.", retry_after=2) from exc
    try:
        await svc.submission.forget(response_id, caller.tenant)
    except NotFound:  # past the results' TTL: only the stored response is left
        if svc.submission.responses is not None:
            await svc.submission.responses.forget(response_id)
    return json_response({"id": response_id, "object": "response.deleted", "deleted": True})


async def _state(request: Request, caller: Client, response_id: str) -> RequestState:
    """The caller's response, or 404 (another tenant's id, or one that names no response). A
    stored response whose state is gone (past the results' TTL) reads as it ended, for the
    tenant's retention."""
    if not response_id.startswith("resp_"):
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
    svc = services(request)
    try:
        return await svc.submission.state(response_id, caller.tenant)
    except NotFound as exc:
        if (kept := await _kept(svc, caller, response_id)) is not None:
            return kept
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id") from exc


async def _kept(svc: Services, caller: Client, response_id: str) -> RequestState | None:
    """A stored response's state made of the Response object it ended with (None: not kept,
    another tenant's, or not ended with an answer)."""
    store = svc.submission.responses
    stored = await store.get(response_id) if store is not None else None
    if stored is None or stored.tenant != caller.tenant or stored.response is None:
        return None
    result = Result(
        id=response_id,
        tenant=caller.tenant,
        status=Status.SUCCEEDED,
        response=stored.response,
        finished_at=float(stored.response.get("created_at") or 0),
    )
    return RequestState(response_id, caller.tenant, Status.SUCCEEDED, result)


def _answer(state: RequestState, body: dict[str, Any] | None = None) -> Response:
    answer = json_response(_rendered(state, body))
    answer.headers.update(accepted_headers(state.id))
    return answer


def _rendered(state: RequestState, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Response object of a request's state: its result's own on success, else a shell
    of the request's `body` (when stored) with the status (and, for a failure, OpenAI's
    `error`: `code` and `message`)."""
    result = state.result
    if result is not None and result.status is Status.SUCCEEDED and result.response is not None:
        return result.response
    made = created_at(state.id) or time.time()
    response = wire.shell(body or {}, state.id, made, STATUSES[state.status])
    if result is not None:
        response["error"] = _error(result)
        if result.served_by is not None:
            response["model"] = result.served_by.model
    return response


def _error(result: Result) -> dict[str, str] | None:
    if result.status is not Status.FAILED and result.status is not Status.EXPIRED:
        return None
    if result.error is None:
        return {"code": "server_error", "message": f"The response {result.status.value}."}
    return {"code": result.error.code or result.error.type, "message": result.error.message}
