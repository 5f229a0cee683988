"""What the routes share: submit and wait, read and wait for a request's state, and the
Idempotency-Key replay of an earlier request."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from redis.exceptions import RedisError
from starlette.datastructures import Headers
from starlette.responses import Response, StreamingResponse

from aibroker.errors import KeyReused, NotFound, Unavailable
from aibroker.stores.idempotency import fingerprint
from aibroker.stores.results import RequestState
from ingress.replies import final_result
from ingress.state import Services
from ingress.views import accepted, result_response
from schemas.chunks import as_chunk
from schemas.envelopes import Request as Envelope
from schemas.envelopes import Result, Status

STATE_REREAD_S = 5.0
"""While waiting on a completion notice, re-read the state this often (a missed notice
costs at most this long)."""


async def submit(svc: Services, envelope: Envelope, wait_s: float | None) -> Response:
    """Write the request; with `wait_s`, wait that long for its result (sync), else 202.
    A sync request with `stream: true` is answered as server-sent events."""
    if wait_s is None:
        await svc.submitter.submit(envelope)
        return accepted(envelope.id)
    if envelope.body.get("stream"):
        return await _submit_stream(svc, envelope, wait_s)
    with svc.replies.expect(envelope.id) as replies:
        await svc.submitter.submit(envelope)
        try:
            result = await asyncio.wait_for(final_result(replies), wait_s)
        except TimeoutError:
            return accepted(envelope.id)
    return result_response(result)


async def _submit_stream(svc: Services, envelope: Envelope, wait_s: float) -> Response:
    """Chunks from the reply topic relayed as they come. The response starts with the first
    chunk, so a request that fails before any has its error status, not a broken stream."""
    registration = contextlib.ExitStack()  # lives as long as the stream, or until we return
    replies = registration.enter_context(svc.replies.expect(envelope.id))
    with registration:
        await svc.submitter.submit(envelope)
        try:
            first = await asyncio.wait_for(replies.get(), wait_s)
        except TimeoutError:
            return accepted(envelope.id)
        if isinstance(first, Result):
            return result_as_stream(first)
        streaming = registration.pop_all()  # from here on the stream below owns it

    async def events() -> AsyncIterator[bytes]:
        try:
            yield sse(first.data)
            while True:
                reply = await asyncio.wait_for(replies.get(), wait_s)
                if isinstance(reply, Result):
                    if reply.status is not Status.SUCCEEDED:
                        yield sse({"error": _error_object(reply)})
                    break
                yield sse(reply.data)
            yield SSE_DONE
        finally:
            streaming.close()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"x-request-id": envelope.id, "cache-control": "no-cache"},
    )


def result_as_stream(result: Result) -> Response:
    """A request that ended without streaming (failed, or done before): its error as JSON,
    or its whole answer as one chunk."""
    if result.status is not Status.SUCCEEDED or result.response is None:
        return result_response(result)

    async def events() -> AsyncIterator[bytes]:
        assert result.response is not None
        yield sse(as_chunk(result.response))
        yield SSE_DONE

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"x-request-id": result.id}
    )


SSE_DONE = b"data: [DONE]\n\n"


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def _error_object(result: Result) -> dict[str, Any]:
    if result.error is None:
        return {"message": f"The request ended as {result.status.value}.", "type": "server_error"}
    return result.error.model_dump(include={"message", "type", "code", "param"})


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
    envelope = envelope.model_copy(update={"idempotency_key": key})
    found = await svc.idempotency.reserve(envelope.tenant, key, envelope.id, print_)
    if not found.same_body:
        raise KeyReused(
            "This Idempotency-Key was used with a different request body.", param="Idempotency-Key"
        )
    if not found.fresh:
        return await replay(
            svc, found.request_id, envelope.tenant, wait_s, stream=bool(envelope.body.get("stream"))
        )
    try:
        return await submit(svc, envelope, wait_s)
    except Unavailable:
        with contextlib.suppress(RedisError):
            await svc.idempotency.forget(envelope.tenant, key, envelope.id, print_)
        raise


async def replay(
    svc: Services, request_id: str, tenant: str, wait_s: float | None, *, stream: bool = False
) -> Response:
    state = await wait_for_end(svc, request_id, tenant, wait_s or 0, known=True)
    if state.status.terminal and state.result is not None and wait_s is not None:
        if stream:
            return result_as_stream(state.result)
        return result_response(state.result)
    return accepted(request_id, state.status)


async def read_state(
    svc: Services, request_id: str, tenant: str, *, known: bool = False
) -> RequestState:
    """The caller's request, or 404 (also for another tenant's id). A `known` request (one an
    Idempotency-Key points to) may not be recorded yet: it reads as queued."""
    state = await svc.store.get(request_id)
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
