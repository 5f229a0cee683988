"""`previous_response_id` at the door: the previous response's input and output prepended to the
request's input before anything is written (`aibroker.stores.responses_previous`), so every target
gets one self-contained conversation. Another tenant's id, or one unknown or past its
retention, is a 404; a previous response that has not completed is a 400."""

from __future__ import annotations

from typing import Any

from aibroker import responses_history as history
from aibroker.errors import NotFound
from aibroker.identity import Client
from aibroker.stores.responses_previous import PARAM, not_completed, previous_of
from ingress.state import Services
from schemas.bodies import Body
from schemas.envelopes import Status
from schemas.responses import ResponsesRequest

ENDING_WAIT_S = 5.0
"""How long a continuation waits for a previous response that is ending to be stored."""


async def continued(svc: Services, caller: Client, body: Body) -> Body:
    """`body` with the conversation so far in its input (as it came when it names none)."""
    if not isinstance(body, ResponsesRequest) or not body.previous_response_id:
        return body
    store = svc.submission.responses
    named = body.previous_response_id
    if store is None:
        raise NotFound(f"Previous response with id '{named}' not found.", param=PARAM)
    previous = await previous_of(store, caller.tenant, named)
    output = previous.output
    if output is None:  # ended moments ago: the results sink has not recorded it yet
        output = await _output_of(svc, caller, named)
    sent = body.model_dump(exclude_unset=True)
    return ResponsesRequest.model_validate(history.continued(sent, previous.body, output))


async def _output_of(svc: Services, caller: Client, named: str) -> list[dict[str, Any]]:
    try:  # a sync answer comes by the reply topic, before the sink stores it: wait for that
        state = await svc.submission.wait_for_end(named, caller.tenant, ENDING_WAIT_S)
    except NotFound as exc:
        raise NotFound(f"Previous response with id '{named}' not found.", param=PARAM) from exc
    result = state.result
    if result is None or result.status is not Status.SUCCEEDED or result.response is None:
        raise not_completed(named, state.status)
    output: list[dict[str, Any]] = result.response.get("output") or []
    return output
