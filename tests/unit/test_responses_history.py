"""`previous_response_id`'s conversation, input items listed, and a stream's end made after
its writer stopped: pure."""

from __future__ import annotations

from typing import Any

import pytest

from aibroker import responses_history as history
from aibroker.responses_stream import TERMINAL, Events

pytestmark = pytest.mark.unit

ANSWER: list[dict[str, Any]] = [
    {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "echo: hi", "annotations": []}],
    }
]


def test_the_previous_turns_come_before_the_new_input() -> None:
    previous = {"model": "m", "input": "hi", "instructions": "old"}
    body = {"model": "m", "input": "and then?", "previous_response_id": "resp_1"}
    sent = history.continued(body, previous, ANSWER)
    assert sent["input"] == [
        {"role": "user", "content": "hi"},
        ANSWER[0],
        {"role": "user", "content": "and then?"},
    ]
    assert "instructions" not in sent  # not carried over, as OpenAI does not
    assert history.context_size(previous, ANSWER) == 2
    assert history.own_input(sent, 2) == [{"role": "user", "content": "and then?"}]


def test_a_third_turn_carries_both_earlier_ones() -> None:
    first = {"input": "a"}
    second = history.continued({"input": [{"role": "user", "content": "b"}]}, first, ANSWER)
    third = history.continued({"input": "c"}, second, ANSWER)
    assert [item.get("content") for item in third["input"]][::2] == ["a", "b", "c"]
    assert history.context_size(second, ANSWER) == 4


def test_items_are_listed_in_openais_shape() -> None:
    item = history.listed_item({"role": "user", "content": "hi"}, "resp_abc", 0)
    assert item == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hi"}],
        "id": "msg_abc_in0",
        "status": "completed",
    }
    assert history.listed_item({"id": "x", "role": "assistant", "content": "a"}, "resp_abc", 1)[
        "content"
    ] == [{"type": "output_text", "text": "a"}]


@pytest.mark.parametrize(
    ("order", "limit", "after", "ids", "more"),
    [
        ("desc", 20, None, ["c", "b", "a"], False),
        ("asc", 2, None, ["a", "b"], True),
        ("asc", 2, "b", ["c"], False),
        ("desc", 1, "c", ["b"], True),
        ("asc", 5, "unknown", ["a", "b", "c"], False),
        ("asc", 5, "c", [], False),
    ],
)
def test_a_page_of_items(
    order: str, limit: int, after: str | None, ids: list[str], more: bool
) -> None:
    got = history.page([{"id": i} for i in "abc"], order, limit, after)
    assert [item["id"] for item in got["data"]] == ids
    assert got["has_more"] is more
    assert (got["first_id"], got["last_id"]) == ((ids[0], ids[-1]) if ids else (None, None))


def test_a_stream_resumed_after_its_writer_stopped_goes_on_from_its_last_event() -> None:
    whole = Events({"model": "m"}, "resp_1", 0.0)
    kept = [*whole.start(), *whole.chunk({"choices": [{"delta": {"content": "echo: "}}]})]
    rest = whole.finish({"status": "completed", "output": [{**ANSWER[0], "id": "msg_1"}]})
    resumed = Events.resumed({"model": "m"}, "resp_1", 0.0, kept)
    made = resumed.finish({"status": "completed", "output": [{**ANSWER[0], "id": "msg_1"}]})
    assert made == rest
    assert made[-1]["type"] in TERMINAL
    assert [e["sequence_number"] for e in [*kept, *made]] == list(range(len(kept) + len(made)))


def test_a_stream_with_nothing_kept_starts_at_zero() -> None:
    events = Events.resumed({}, "resp_1", 0.0, [])
    assert [e["sequence_number"] for e in events.start()] == [0, 1]
