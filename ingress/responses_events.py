"""`POST /v1/responses` with `stream: true`: the chat chunks of the reply topic written as the
Responses API's typed server-sent events (`aibroker.responses_stream`), the end once the
result is stored, or a response that ended before its stream answered as its events at once
(or its error)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from redis.exceptions import RedisError
from starlette.responses import Response, StreamingResponse

from aibroker.errors import NotFound
from aibroker.ids import created_at
from aibroker.responses_stream import Events
from ingress.replies import Reply
from ingress.views import accepted_headers, cache_header, result_response
from schemas.envelopes import Chunk, Result, Status

SETTLE_S = 2.0
"""How long a stream's end event waits for the results sink to store the response's result."""
Settle = Callable[[], Awaitable[object]]
"""Returns once the response's result is stored (`Submission.wait_for_end`)."""


def sse(event: dict[str, Any]) -> bytes:
    """One event as OpenAI sends it: its type on the `event:` line, the event as `data:`."""
    kind = str(event["type"]).encode()
    return b"event: " + kind + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def _events_of(result_id: str, body: dict[str, Any]) -> Events:
    return Events(body, result_id, created_at(result_id) or 0.0)


def ending(events: Events, result: Result) -> list[dict[str, Any]]:
    """The events that end a response: its items closed and its end, or its failure."""
    if result.status is Status.SUCCEEDED and result.response is not None:
        return events.finish(result.response)
    error = result.error
    code = (error.code or error.type) if error else "server_error"
    message = error.message if error else f"The response ended as {result.status.value}."
    status = "cancelled" if result.status is Status.CANCELLED else "failed"
    return [events.failed({"code": code, "message": message}, status)]


async def settled(settle: Settle | None) -> None:
    """Wait (at most `SETTLE_S`) for a response's result to be stored, before its end event
    goes out: a retrieve right after that event then reads the response as it ended, not
    `in_progress` (the end comes by the reply topic, the stored result by the results sink).
    Redis down or the sink behind: the end goes out all the same."""
    if settle is None:
        return
    with contextlib.suppress(TimeoutError, RedisError, NotFound):
        await asyncio.wait_for(settle(), SETTLE_S)


def relay(
    body: dict[str, Any],
    first: Chunk,
    replies: asyncio.Queue[Reply],
    registration: contextlib.ExitStack,
    wait_s: float,
    settle: Settle | None = None,
) -> Response:
    """The stream from its first chunk on; it closes `registration` (the reply waiter) when
    it ends, however it ends, its end once its result is stored (`settled`)."""
    events = _events_of(first.id, body)

    async def written() -> AsyncIterator[bytes]:
        try:
            for event in [*events.start(), *events.chunk(first.data)]:
                yield sse(event)
            while True:
                reply = await asyncio.wait_for(replies.get(), wait_s)
                if isinstance(reply, Result):
                    await settled(settle)
                    for event in ending(events, reply):
                        yield sse(event)
                    return
                for event in events.chunk(reply.data):
                    yield sse(event)
        finally:
            registration.close()

    return StreamingResponse(
        written(),
        media_type="text/event-stream",
        headers={
            **accepted_headers(first.id),
            **cache_header(first.cache, first.cache_score),
            "cache-control": "no-cache",
        },
    )


def result_as_stream(result: Result, body: dict[str, Any] | None = None) -> Response:
    """A response that ended without streaming (failed, or done before): its error as JSON,
    or its whole answer as its events."""
    if result.status is not Status.SUCCEEDED or result.response is None:
        return result_response(result)
    response = result.response
    events = _events_of(result.id, body or {"model": response.get("model")})

    async def written() -> AsyncIterator[bytes]:
        for event in [*events.start(), *events.finish(response)]:
            yield sse(event)

    return StreamingResponse(
        written(),
        media_type="text/event-stream",
        headers=accepted_headers(result.id) | cache_header(result.cache, result.cache_score),
    )
