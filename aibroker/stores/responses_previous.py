"""`previous_response_id` resolved, wherever a request comes in: at ingress
(`ingress/responses_continue.py`, which also waits for a previous response that is ending) and
for a batch's lines as the batch runner feeds them (`continued_line`). Either way the previous
response's input and output are put before the request's own input before the Kafka write
(`aibroker.responses_history`), and the same ids are refused: another tenant's, an unknown
one, one past its retention or sent with `store: false` is a 404; one that has not completed
is a 400."""

from __future__ import annotations

from aibroker import responses_history as history
from aibroker.errors import InvalidRequest, NotFound
from aibroker.stores.responses import ResponseStore, StoredResponse
from aibroker.stores.results import RequestStore
from schemas.envelopes import Kind, Request, Status

PARAM = "previous_response_id"


async def previous_of(store: ResponseStore, tenant: str, named: str) -> StoredResponse:
    """The tenant's stored response `named`, or NotFound naming `previous_response_id`."""
    previous = await store.get(named) if named.startswith("resp_") else None
    if previous is None or previous.tenant != tenant:
        raise NotFound(f"Previous response with id '{named}' not found.", param=PARAM)
    return previous


def not_completed(named: str, status: Status | None) -> InvalidRequest:
    said = status.value if status is not None else "not ended"
    return InvalidRequest(
        f"Previous response '{named}' has not completed (it is {said}).", param=PARAM
    )


async def continued_line(store: ResponseStore, requests: RequestStore, request: Request) -> Request:
    """A batch line's request with the conversation so far in its input (as it came when it
    names no previous response). Its output is the stored one, or its result's when the
    results sink has not recorded it yet."""
    named = request.body.get(PARAM)
    if request.kind is not Kind.RESPONSES or not isinstance(named, str) or not named:
        return request
    previous = await previous_of(store, request.tenant, named)
    output = previous.output
    if output is None:
        state = await requests.get(named)
        result = state.result if state is not None else None
        if result is None or result.status is not Status.SUCCEEDED or result.response is None:
            raise not_completed(named, state.status if state is not None else None)
        output = result.response.get("output") or []
    body = history.continued(request.body, previous.body, output)
    return request.model_copy(update={"body": body})
