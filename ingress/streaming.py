"""Server-sent events for `stream: true`: chunks relayed from the reply topic as they come, or
a request that ended before streaming answered as one chunk (or its error)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from ingress.replies import Reply
from ingress.views import accepted_headers, cache_header, result_response
from schemas.chunks import as_chunk
from schemas.envelopes import Chunk, Result, Status

SSE_DONE = b"data: [DONE]\n\n"


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def relay(
    first: Chunk,
    replies: asyncio.Queue[Reply],
    registration: contextlib.ExitStack,
    wait_s: float,
) -> Response:
    """The stream from its first chunk on; it closes `registration` (the reply waiter) when
    it ends, however it ends."""

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
            registration.close()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={
            **accepted_headers(first.id),
            **cache_header(first.cache, first.cache_score),
            "cache-control": "no-cache",
        },
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
        events(),
        media_type="text/event-stream",
        headers=accepted_headers(result.id) | cache_header(result.cache, result.cache_score),
    )


def _error_object(result: Result) -> dict[str, Any]:
    if result.error is None:
        return {"message": f"The request ended as {result.status.value}.", "type": "server_error"}
    return result.error.model_dump(include={"message", "type", "code", "param"})
