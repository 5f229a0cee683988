"""Resumable streams of background responses: a `background: true, stream: true` response's
events are kept in Redis (`aib:rspev:{<id>}`, for the tenant's retention) by the ingress that
accepted it, as the pool's chunks reach its reply topic; `POST /v1/responses` and `GET
/v1/responses/{id}?stream=true&starting_after=N` read them from there, and follow them live
until the end. Should the writer stop (its ingress gone, or the response queued past
`WRITER_WAIT_S`), the reader that finds the response ended without its end event makes the
end from the stored result and keeps it, so every reader sees the same events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from starlette.responses import StreamingResponse

from aibroker.ids import created_at
from aibroker.responses_stream import TERMINAL, Events
from aibroker.stores.responses import ResponseStore
from aibroker.stores.results import RequestState
from ingress.replies import Reply
from ingress.responses_events import Settle, ending, settled, sse
from ingress.views import accepted_headers
from schemas.envelopes import Request, Result

log = logging.getLogger(__name__)

WRITER_WAIT_S = 600.0
"""How long the writer waits for the next chunk (a background response may queue behind its
quota); past it, readers make the end from the result."""
FOLLOW_POLL_S = 0.05
"""How often a reader polls for new events (not a blocking read: Redis commands share
pipelined connections, and one call's deadline is short)."""
STATE_EVERY = 20
"""Empty polls between two reads of the response's state (about a second)."""
ENDED_READS = 2
"""State reads that find the response ended, no event new, before a reader makes the end
itself: the writer keeps it moments after the result is stored."""

ReadState = Callable[[], Awaitable[RequestState]]


def _events(body: dict[str, Any], response_id: str, kept: list[dict[str, Any]]) -> Events:
    return Events.resumed(body, response_id, created_at(response_id) or 0.0, kept)


async def start(store: ResponseStore, request: Request) -> None:
    """Keep the first events (`response.created`, `response.in_progress`) before the answer,
    so a stream read right after the accept begins with them."""
    await store.append(request.id, request.tenant, _events(request.body, request.id, []).start())


async def write(
    store: ResponseStore,
    request: Request,
    replies: asyncio.Queue[Reply],
    registration: contextlib.ExitStack,
    settle: Settle | None = None,
) -> None:
    """Keep the events the pool's chunks make, then the end once the result is stored
    (`responses_events.settled`), as they reach the reply topic (a task of its own: the
    client that created the response may be gone)."""
    events = _events(request.body, request.id, [])
    events.start()  # numbered after the two `start` kept
    with registration:
        while True:
            try:
                reply = await asyncio.wait_for(replies.get(), WRITER_WAIT_S)
            except TimeoutError:
                return
            if isinstance(reply, Result):
                await settled(settle)
            made = ending(events, reply) if isinstance(reply, Result) else events.chunk(reply.data)
            try:
                await store.append(request.id, request.tenant, made)
            except (RedisError, TimeoutError) as exc:
                log.warning("stopped keeping the events of %s (%r)", request.id, exc)
                return
            if isinstance(reply, Result):
                return


async def _made_end(
    store: ResponseStore, state: RequestState, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every kept event of an ended response, its end made from its result (and kept) when
    it is missing."""
    kept = await store.events_after(state.id, -1)
    if (kept and kept[-1]["type"] in TERMINAL) or state.result is None:
        return kept
    events = _events(body, state.id, kept)
    made = [*([] if kept else events.start()), *ending(events, state.result)]
    await store.append(state.id, state.tenant, made)
    return [*kept, *made]


def replay(
    store: ResponseStore, read_state: ReadState, body: dict[str, Any], response_id: str, after: int
) -> StreamingResponse:
    """The events numbered above `after`, then live ones until the end; a resume past the end
    answers the end event only."""

    async def ended(state: RequestState, since: int) -> AsyncIterator[bytes]:
        every = await _made_end(store, state, body)
        for event in [e for e in every if e["sequence_number"] > since] or every[-1:]:
            yield sse(event)

    async def written() -> AsyncIterator[bytes]:
        seen = after
        state = await read_state()
        if state.status.terminal:  # all kept, or its end to make: no waiting
            async for line in ended(state, after):
                yield line
            return
        polls = ended_reads = 0
        while ended_reads < ENDED_READS:
            got = await store.events_after(response_id, seen)
            for event in got:
                yield sse(event)
                seen = int(event["sequence_number"])
                if event["type"] in TERMINAL:
                    return
            if got:
                polls = ended_reads = 0
                continue
            await asyncio.sleep(FOLLOW_POLL_S)
            polls += 1
            if polls % STATE_EVERY == 0:
                state = await read_state()
                ended_reads += 1 if state.status.terminal else 0
        async for line in ended(state, seen):
            yield line

    return StreamingResponse(
        written(),
        media_type="text/event-stream",
        headers={**accepted_headers(response_id), "cache-control": "no-cache"},
    )
