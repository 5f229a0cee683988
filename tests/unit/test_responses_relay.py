"""A provider's own Responses stream relayed: its opening and its end left to the broker (which
uses its own id), every other event in order, numbered in the broker's stream; the pool's
result is the provider's final Response under the broker's id; an `error` event, a failed
response or a stream cut before its end fail the call."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aibroker.errors import ProviderUnavailable
from aibroker.responses_stream import Events
from consumers.pool.responses import relayed, streamed
from schemas.envelopes import Kind, Mode, Request, Target

pytestmark = pytest.mark.unit

TARGET = Target(provider="own", model="echo")
BODY: dict[str, Any] = {"model": "own/echo", "input": "hi there", "stream": True}
ITEM: dict[str, Any] = {
    "type": "message",
    "id": "msg_provider1",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "echo: hi there", "annotations": []}],
}
FINAL: dict[str, Any] = {
    "id": "resp_provider1",
    "object": "response",
    "status": "completed",
    "model": "echo",
    "output": [ITEM],
    "usage": {"input_tokens": 3, "output_tokens": 3, "total_tokens": 6},
}


def provider_events() -> list[dict[str, Any]]:
    """What a provider's `/v1/responses` streams, numbered by the provider from 0."""
    running = {**FINAL, "status": "in_progress", "output": []}
    where = {"item_id": "msg_provider1", "output_index": 0, "content_index": 0}
    made: list[dict[str, Any]] = [
        {"type": "response.created", "response": running},
        {"type": "response.in_progress", "response": running},
        {"type": "response.output_item.added", "output_index": 0, "item": {**ITEM, "content": []}},
        {"type": "response.content_part.added", **where, "part": {"type": "output_text"}},
        {"type": "response.output_text.delta", **where, "delta": "echo:"},
        {"type": "response.output_text.delta", **where, "delta": " hi there"},
        {"type": "response.output_text.done", **where, "text": "echo: hi there"},
        {"type": "response.content_part.done", **where, "part": ITEM["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": ITEM},
        {"type": "response.completed", "response": FINAL},
    ]
    return [{**event, "sequence_number": 7 + i} for i, event in enumerate(made)]


def request() -> Request:
    return Request(
        id="resp_0000000000000000000000000",
        tenant="t",
        kind=Kind.RESPONSES,
        model="own/echo",
        body=BODY,
        mode=Mode.SYNC,
        created_at=time.time(),
    )


async def each(events: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for event in events:
        yield event


async def test_the_pool_relays_all_but_the_opening_and_keeps_the_final_response() -> None:
    got = [event async for event in relayed(each(provider_events()), TARGET)]
    assert [e["type"] for e in got] == [e["type"] for e in provider_events()[2:]]
    done = streamed(request(), got)
    assert done.response["id"] == request().id  # the broker's id, not the provider's
    assert done.response["output"] == [ITEM]
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (3, 3)


@pytest.mark.parametrize(
    "cut",
    [
        [{"type": "error", "code": "server_error", "message": "boom"}],
        [{"type": "response.failed", "response": {**FINAL, "error": {"message": "boom"}}}],
        [],  # the connection closed before the end
    ],
)
async def test_a_stream_that_does_not_end_well_fails_the_call(cut: list[dict[str, Any]]) -> None:
    events = [*provider_events()[:5], *cut]
    with pytest.raises(ProviderUnavailable):
        [event async for event in relayed(each(events), TARGET)]


def test_ingress_numbers_relayed_events_in_its_own_stream() -> None:
    events = Events(BODY, request().id, 0)
    made = events.start()
    for event in provider_events()[2:]:  # what the pool relays
        made += events.chunk(event)
    final = streamed(request(), provider_events()).response
    made += events.finish(final)
    kinds = [e["type"] for e in made]
    assert kinds == [
        "response.created",
        "response.in_progress",
        *[e["type"] for e in provider_events()[2:-1]],
        "response.completed",
    ]
    assert [e["sequence_number"] for e in made] == list(range(len(made)))
    assert made[0]["response"]["id"] == made[-1]["response"]["id"] == request().id
    assert {e["item_id"] for e in made if "item_id" in e} == {"msg_provider1"}
    deltas = [e["delta"] for e in made if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "echo: hi there"


def test_a_resumed_relayed_stream_ends_with_its_end_alone() -> None:
    """The writer stopped after some relayed events: the end made from the result does not
    close the items again."""
    events = Events(BODY, request().id, 0)
    kept = events.start()
    for event in provider_events()[2:9]:
        kept += events.chunk(event)
    resumed = Events.resumed(BODY, request().id, 0, kept)
    end = resumed.finish(streamed(request(), provider_events()).response)
    assert [(e["type"], e["sequence_number"]) for e in end] == [("response.completed", len(kept))]
