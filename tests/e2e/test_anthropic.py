"""Anthropic deployments end to end: the official `openai` SDK against the broker, the broker
against the mock's Anthropic Messages API (its wire format, errors and streams)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import openai
import orjson
import pytest

from loadtest.stack import Stack
from tests.e2e.conftest import WEATHER, wire_body

pytestmark = pytest.mark.e2e


async def test_chat_with_system_and_usage(sdk: openai.AsyncOpenAI, stack: Stack) -> None:
    reply = await sdk.chat.completions.create(
        model="claude/echo",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "No emoji."},
            {"role": "user", "content": "Hello there"},
        ],
        max_completion_tokens=50,
        stop=["END"],
        temperature=0.3,
    )
    assert reply.choices[0].message.content == "echo: Hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    wire = await wire_body(stack, "anthropic")
    assert wire["system"] == "Be brief.\n\nNo emoji."
    assert wire["max_tokens"] == 50
    assert wire["stop_sequences"] == ["END"]
    assert wire["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hello there"}]}
    ]


async def test_tool_call_round_trip(sdk: openai.AsyncOpenAI, stack: Stack) -> None:
    asked: list[Any] = [{"role": "user", "content": "call it for Paris"}]
    first = await sdk.chat.completions.create(
        model="claude/echo",
        messages=asked,
        tools=[WEATHER],
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert orjson.loads(call.function.arguments) == {"echo": "call it for Paris"}  # type: ignore[union-attr]
    history: list[Any] = [
        *asked,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ]
    second = await sdk.chat.completions.create(
        model="claude/echo",
        messages=history,
        tools=[WEATHER],
    )
    assert second.choices[0].message.content == f"echo: [tool {call.id} said sunny, 21C]"
    wire = await wire_body(stack, "anthropic")
    assert [m["role"] for m in wire["messages"]] == ["user", "assistant", "user"]
    assert wire["messages"][1]["content"][0]["type"] == "tool_use"
    assert wire["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]


async def test_images_are_passed_as_image_blocks(sdk: openai.AsyncOpenAI, stack: Stack) -> None:
    data = base64.b64encode(b"\x89PNG not really").decode()
    reply = await sdk.chat.completions.create(
        model="claude/echo",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == (
        "echo: what is this? [image image/png] [image https://example.com/cat.jpg]"
    )
    blocks = (await wire_body(stack, "anthropic"))["messages"][0]["content"]
    assert blocks[1]["source"] == {"type": "base64", "media_type": "image/png", "data": data}


async def test_json_mode_answers_json(sdk: openai.AsyncOpenAI) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"echo": {"type": "string"}}}
    reply = await sdk.chat.completions.create(
        model="claude/echo",
        messages=[{"role": "user", "content": "give json"}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    assert reply.choices[0].finish_reason == "stop"
    assert orjson.loads(reply.choices[0].message.content or "") == {"echo": "give json"}


async def test_streaming_text_and_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="claude/echo",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert text == "echo: one two three"
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens > 0


async def test_streaming_a_tool_call(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="claude/echo",
        messages=[{"role": "user", "content": "call now"}],
        tools=[WEATHER],
        stream=True,
    )
    assert isinstance(stream, openai.AsyncStream)
    name, arguments, finish = "", "", None
    async for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name += (call.function.name or "") if call.function else ""
                arguments += (call.function.arguments or "") if call.function else ""
            finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert orjson.loads(arguments) == {"echo": "call now"}
    assert finish == "tool_calls"


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"temperature": 1.5}, "temperature"), ({"n": 2}, "n"), ({"seed": 7}, "seed")],
)
async def test_what_anthropic_cannot_do_is_refused_by_name(
    http: httpx.AsyncClient, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "claude/echo", "messages": [{"role": "user", "content": "x"}], **extra}
    answer = await http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param


async def test_anthropic_errors_keep_their_status_and_message(http: httpx.AsyncClient) -> None:
    body = {"model": "claude/fail-400", "messages": [{"role": "user", "content": "x"}]}
    answer = await http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "mock invalid_request_error"
