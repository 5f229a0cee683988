"""What the routes share: submit and wait, read and wait for a request's state, and the
Idempotency-Key replay of an earlier request."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from redis.exceptions import RedisError
from starlette.datastructures import Headers
from starlette.responses import Response

from aibroker.errors import InvalidRequest, NotFound, Unavailable
from aibroker.idempotency import fingerprint
from aibroker.store import RequestState
from ingress.state import Services
from ingress.views import accepted, result_response
from schemas.envelopes import Request as Envelope
from schemas.envelopes import Status

STATE_REREAD_S = 5.0
"""While waiting on a completion notice, re-read the state this often (a missed notice
costs at most this long)."""


class KeyReused(InvalidRequest):
    status = 422
    code = "idempotency_key_reused"


async def submit(svc: Services, envelope: Envelope, wait_s: float | None) -> Response:
    """Write the request; with `wait_s`, wait that long for its result (sync), else 202."""
    if wait_s is None:
        await svc.submitter.submit(envelope)
        return accepted(envelope.id)
    with svc.replies.expect(envelope.id) as reply:
        await svc.submitter.submit(envelope)
        try:
            result = await asyncio.wait_for(reply, wait_s)
        except TimeoutError:
            return accepted(envelope.id)
    return result_response(result)


async def submit_once(
    svc: Services,
    headers: Headers,
    endpoint: str,
    body: dict[str, Any],
    envelope: Envelope,
    wait_s: float | None,
) -> Response:
    """`submit`, unless the Idempotency-Key names an earlier request: then that one's answer."""
    key = headers.get("idempotency-key")
    if not key:
        return await submit(svc, envelope, wait_s)
    print_ = fingerprint(endpoint, body)
    try:
        found = await svc.idempotency.reserve(envelope.tenant, key, envelope.id, print_)
    except RedisError as exc:
        raise Unavailable("Idempotency keys cannot be checked right now.", retry_after=2) from exc
    if not found.same_body:
        raise KeyReused(
            "This Idempotency-Key was used with a different request body.", param="Idempotency-Key"
        )
    if not found.fresh:
        return await replay(svc, found.request_id, envelope.tenant, wait_s)
    try:
        return await submit(svc, envelope, wait_s)
    except Unavailable:
        with contextlib.suppress(RedisError):
            await svc.idempotency.forget(envelope.tenant, key, envelope.id, print_)
        raise


async def replay(svc: Services, request_id: str, tenant: str, wait_s: float | None) -> Response:
    state = await wait_for_end(svc, request_id, tenant, wait_s or 0, known=True)
    if state.status.terminal and state.result is not None and wait_s is not None:
        return result_response(state.result)
    return accepted(request_id, state.status)


async def read_state(
    svc: Services, request_id: str, tenant: str, *, known: bool = False
) -> RequestState:
    """The caller's request, or 404 (also for another tenant's id). A `known` request (one an
    Idempotency-Key points to) may not be recorded yet: it reads as queued."""
    try:
        state = await svc.store.get(request_id)
    except RedisError as exc:
        raise Unavailable("Request state is unavailable right now.", retry_after=2) from exc
    if state is None and known:
        return RequestState(request_id, tenant, Status.QUEUED, None)
    if state is None or state.tenant != tenant:
        raise NotFound(f"No request with id '{request_id}'.", param="id")
    return state


async def wait_for_end(
    svc: Services, request_id: str, tenant: str, wait_s: float, *, known: bool = False
) -> RequestState:
    """The state as soon as the request ends, or as it is after `wait_s`."""
    state = await read_state(svc, request_id, tenant, known=known)
    if state.status.terminal or wait_s <= 0:
        return state
    deadline = time.monotonic() + wait_s
    async with svc.notices.watch(request_id) as done:
        state = await read_state(
            svc, request_id, tenant, known=known
        )  # after subscribing: nothing missed
        while not state.status.terminal and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), min(left, STATE_REREAD_S))
            done.clear()
            state = await read_state(svc, request_id, tenant, known=known)
    return state
