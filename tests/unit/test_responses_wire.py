"""The Responses API over chat (`aibroker.responses_wire`): requests to chat bodies, chat
completions to Response objects, and the fields refused with a 400 naming them."""

from __future__ import annotations

from typing import Any

import pytest

from aibroker import responses_wire as wire
from aibroker.errors import InvalidRequest
from aibroker.ids import created_at, new_id
from aibroker.responses_stream import Events
from aibroker.routes import ProviderConfig, Route, RouteTable, RouteTarget, resolve
from ingress.body_checks import check_body
from schemas.envelopes import Kind
from schemas.openai import Usage
from schemas.responses import ResponsesRequest

pytestmark = pytest.mark.unit

SCHEMA = {"type": "object", "properties": {"echo": {"type": "string"}}}
TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
CHAT_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}},
}
IMAGE = "data:image/png;base64,iVBORw0K"

TO_CHAT: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("a string", {"input": "hi"}, {"messages": [{"role": "user", "content": "hi"}]}),
    (
        "instructions",
        {"input": "hi", "instructions": "Be brief."},
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
            ]
        },
    ),
    (
        "text and an image",
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is it?"},
                        {"type": "input_image", "image_url": IMAGE, "detail": "low"},
                    ],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is it?"},
                        {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
                    ],
                }
            ]
        },
    ),
    (
        "a tool round trip",
        {
            "input": [
                {"role": "user", "content": "call it"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "c2", "output": "dry"},
            ],
            "tools": [TOOL],
            "tool_choice": {"type": "function", "name": "get_weather"},
        },
        {
            "messages": [
                {"role": "user", "content": "call it"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "c2", "content": "dry"},
            ],
            "tools": [CHAT_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
    ),
    (
        "an earlier answer in the input",
        {
            "input": [
                {"role": "user", "content": "hi"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "echo: hi"}],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"role": "user", "content": "again"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "echo: hi"},
                {"role": "user", "content": "again"},
            ]
        },
    ),
    (
        "JSON schema",
        {"input": "hi", "text": {"format": {"type": "json_schema", "name": "x", "schema": SCHEMA}}},
        {
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": SCHEMA},
            },
        },
    ),
    (
        "sampling, the cap and reasoning",
        {
            "input": "hi",
            "max_output_tokens": 20,
            "temperature": 0.2,
            "top_p": 0.9,
            "reasoning": {"effort": "low"},
            "text": {"format": {"type": "text"}},
            "metadata": {"run": "1"},
            "store": True,
            "background": True,
        },
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": 20,
            "temperature": 0.2,
            "top_p": 0.9,
            "reasoning_effort": "low",
        },
    ),
]


@pytest.mark.parametrize(("case", "body", "chat"), TO_CHAT, ids=[c[0] for c in TO_CHAT])
def test_requests_translate_to_chat(case: str, body: dict[str, Any], chat: dict[str, Any]) -> None:
    assert wire.to_chat({"model": "m", **body}) == {"model": "m", **chat}


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
        "input[0].content[0].type",
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
        "input[0].content[0].file_id",
    ),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"reasoning": {"effort": "low", "summary": "auto"}}, "reasoning.summary"),
    ({"text": {"format": {"type": "text"}, "verbosity": "low"}}, "text.verbosity"),
    ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
    ({"truncation": "auto"}, "truncation"),
    ({"max_tool_calls": 3}, "max_tool_calls"),
    ({"background": True, "store": False}, "store"),
]


@pytest.mark.parametrize(("change", "param"), REFUSED, ids=[p for _, p in REFUSED])
def test_what_chat_cannot_honour_is_refused_by_name(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        wire.to_chat({"model": "m", "input": "hi", **change})
    assert refused.value.param == param
    assert refused.value.status == 400


def chat_answer(message: dict[str, Any], finish: str = "stop", **usage: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "echo",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, **usage},
    }


def test_a_chat_answer_is_a_response_object() -> None:
    rid = new_id("resp")
    body = {"model": "fast", "input": "hi", "instructions": "Be brief.", "metadata": {"a": "b"}}
    answer = chat_answer(
        {"role": "assistant", "content": "echo: hi"}, prompt_tokens_details={"cached_tokens": 4}
    )
    response = wire.from_chat(answer, body, rid, 1_700_000_000.5)
    assert (response["id"], response["object"], response["status"]) == (
        rid,
        "response",
        "completed",
    )
    assert response["created_at"] == 1_700_000_000
    assert response["output"] == [
        {
            "type": "message",
            "id": f"msg_{rid[5:]}",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "echo: hi", "annotations": []}],
        }
    ]
    assert response["usage"] == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10,
    }
    assert (response["instructions"], response["metadata"]) == ("Be brief.", {"a": "b"})
    assert response["incomplete_details"] is None


def test_tool_calls_are_function_call_items() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    answer = chat_answer({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")
    response = wire.from_chat(answer, {"model": "m", "input": "x"}, "resp_abc", 0)
    assert response["output"] == [
        {
            "type": "function_call",
            "id": "fc_abc0",
            "call_id": "call_1",
            "name": "f",
            "arguments": '{"a":1}',
            "status": "completed",
        }
    ]
    assert response["status"] == "completed"


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [
        ("stop", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
    ],
)
def test_a_cut_answer_is_incomplete(finish: str, status: str, reason: str | None) -> None:
    answer = chat_answer({"role": "assistant", "content": "echo"}, finish)
    response = wire.from_chat(answer, {"model": "m", "input": "x"}, "resp_1", 0)
    assert response["status"] == status
    assert response["incomplete_details"] == (reason and {"reason": reason})


def test_usage_goes_both_ways() -> None:
    usage = {
        "input_tokens": 9,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 14,
    }
    chat = wire.chat_usage(usage)
    assert (chat.prompt_tokens, chat.completion_tokens, chat.total_tokens) == (9, 5, 14)
    assert wire.responses_usage(chat) == usage
    assert wire.responses_usage(Usage(prompt_tokens=1, completion_tokens=2))["total_tokens"] == 3


def test_passthrough_keeps_the_body_and_renames_the_answer() -> None:
    body = {"model": "fast", "input": "hi", "background": True, "tools": [TOOL], "stream": False}
    body["previous_response_id"] = "resp_0"  # its turns are in `input` already
    assert wire.passthrough_body(body, "gpt-4o") == {
        "model": "gpt-4o",
        "input": "hi",
        "tools": [TOOL],
    }
    answer = wire.from_passthrough({"id": "resp_upstream", "status": "completed"}, body, "resp_me")
    assert answer == {
        "id": "resp_me",
        "status": "completed",
        "background": True,
        "previous_response_id": "resp_0",
    }


def test_ids_tell_when_they_were_made() -> None:
    assert created_at(new_id("resp", now_ms=1_700_000_000_123)) == 1_700_000_000.123
    assert created_at("resp_not-an-id") is None


PASSTHROUGH = RouteTable(
    providers={
        "chat": ProviderConfig(name="chat", base_url="http://c", api_key="k"),
        "own": ProviderConfig(name="own", base_url="http://o", api_key="k", responses_api=True),
    },
    aliases={
        "both": Route(
            targets=[
                RouteTarget(provider="own", model="gpt-4o"),
                RouteTarget(provider="chat", model="echo"),
            ]
        ),
        "chat-alias": Route(kind=Kind.CHAT, targets=[RouteTarget(provider="chat", model="x")]),
    },
)


@pytest.mark.parametrize(
    ("model", "refused"),
    [("own/gpt-4o", None), ("chat/echo", "tools[0].type"), ("both", "tools[0].type")],
)
def test_the_door_checks_translation_only_where_a_target_needs_it(
    model: str, refused: str | None
) -> None:
    body = ResponsesRequest(model=model, input="hi", tools=[{"type": "web_search"}])
    if refused is None:
        check_body(body, PASSTHROUGH, vector_store=False)
        return
    with pytest.raises(InvalidRequest) as caught:
        check_body(body, PASSTHROUGH, vector_store=False, where="body.")
    assert caught.value.param == f"body.{refused}"


def test_a_chat_alias_serves_responses() -> None:
    assert resolve("chat-alias", PASSTHROUGH, Kind.RESPONSES).targets[0].model == "x"


def test_streams_are_served_by_every_target() -> None:
    """A stream goes over chat, or to a provider's own Responses API (its events relayed)."""
    for model in ("chat/echo", "own/gpt-4o", "both"):
        body = ResponsesRequest(model=model, input="hi", stream=True)
        check_body(body, PASSTHROUGH, vector_store=False)


def chat_chunk(**delta: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def test_a_stream_is_numbered_events_that_end_with_the_response() -> None:
    body = {"model": "m", "input": "hi"}
    events = Events(body, "resp_abc", 0)
    made = [*events.start(), *events.chunk(chat_chunk(role="assistant", content=""))]
    made += events.chunk(chat_chunk(content="echo:")) + events.chunk(chat_chunk(content=" hi"))
    final = wire.from_chat(
        chat_answer({"role": "assistant", "content": "echo: hi"}), body, "resp_abc", 0
    )
    made += events.finish(final)
    assert [e["type"] for e in made] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in made] == list(range(len(made)))
    assert {e.get("item_id") for e in made if "item_id" in e} == {final["output"][0]["id"]}
    assert made[6]["text"] == "echo: hi"
    assert made[-1]["response"] == final


def test_an_answer_that_ended_before_its_stream_comes_whole() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    message = {"role": "assistant", "content": "sure", "tool_calls": [call]}
    final = wire.from_chat(
        chat_answer(message, "length"), {"model": "m", "input": "x"}, "resp_1", 0
    )
    events = Events({"model": "m", "input": "x"}, "resp_1", 0)
    made = [*events.start(), *events.finish(final)]
    kinds = [e["type"] for e in made]
    assert kinds.count("response.output_text.delta") == 1
    assert next(e for e in made if e["type"] == "response.output_text.delta")["delta"] == "sure"
    assert "response.function_call_arguments.done" in kinds
    assert kinds[-1] == "response.incomplete"
    failed = events.failed({"code": "server_error", "message": "boom"})
    assert (failed["type"], failed["response"]["status"]) == ("response.failed", "failed")
    assert failed["sequence_number"] == len(made)
