"""Gemini deployments end to end: the official `openai` SDK against the broker, the broker
(through `google-genai`) against the mock's Gemini REST API."""

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


async def test_chat_with_system_n_and_seed(sdk: openai.AsyncOpenAI, stack: Stack) -> None:
    reply = await sdk.chat.completions.create(
        model="gemini/echo",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"},
        ],
        n=2,
        seed=7,
        max_tokens=30,
        stop="END",
    )
    assert [c.message.content for c in reply.choices] == ["echo: Hello there"] * 2
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 6
    wire = await wire_body(stack, "gemini")
    assert wire["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert wire["generationConfig"]["candidateCount"] == 2
    assert wire["generationConfig"]["seed"] == 7
    assert wire["generationConfig"]["maxOutputTokens"] == 30
    assert wire["generationConfig"]["stopSequences"] == ["END"]


async def test_tool_call_round_trip(sdk: openai.AsyncOpenAI, stack: Stack) -> None:
    asked: list[Any] = [{"role": "user", "content": "call it for Rome"}]
    first = await sdk.chat.completions.create(model="gemini/echo", messages=asked, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call: Any = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"echo": "call it for Rome"}
    history = [
        *asked,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "cloudy"},
    ]
    second = await sdk.chat.completions.create(
        model="gemini/echo", messages=history, tools=[WEATHER]
    )
    assert second.choices[0].message.content == (
        "echo: [tool get_weather said {'content': 'cloudy'}]"
    )
    wire = await wire_body(stack, "gemini")
    assert [c["role"] for c in wire["contents"]] == ["user", "model", "user"]
    declared = wire["tools"][0]["functionDeclarations"][0]
    assert declared["parametersJsonSchema"] == WEATHER["function"]["parameters"]


async def test_inline_images_and_refused_urls(
    sdk: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    data = base64.b64encode(b"\x89PNG not really").decode()
    image: Any = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
    reply = await sdk.chat.completions.create(
        model="gemini/echo",
        messages=[{"role": "user", "content": [{"type": "text", "text": "see"}, image]}],
    )
    assert reply.choices[0].message.content == "echo: see [image image/png]"
    by_url = {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    body = {"model": "gemini/echo", "messages": [{"role": "user", "content": [by_url]}]}
    refused = await http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "messages[0].content[0].image_url"


async def test_json_schema_mode(sdk: openai.AsyncOpenAI, stack: Stack) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"echo": {"type": "string"}}}
    reply = await sdk.chat.completions.create(
        model="gemini/echo",
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    assert orjson.loads(reply.choices[0].message.content or "") == {"echo": "json please"}
    config = (await wire_body(stack, "gemini"))["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema


async def test_streaming_with_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="gemini/echo",
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
    assert usage.total_tokens > 0


async def test_rate_limits_carry_retry_info_and_errors_their_status(
    http: httpx.AsyncClient,
) -> None:
    body = {"model": "gemini/fail-400", "messages": [{"role": "user", "content": "x"}]}
    answer = await http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "mock INVALID_ARGUMENT"
    body["model"] = "gemini/fail-429"
    limited = await http.post("/v1/chat/completions", json=body, headers={"Prefer": "wait=60"})
    assert limited.status_code == 429  # retried with RetryInfo's delay, then given up


async def test_logit_bias_is_refused_by_name(http: httpx.AsyncClient) -> None:
    body = {
        "model": "gemini/echo",
        "messages": [{"role": "user", "content": "x"}],
        "logit_bias": {"1": 5},
    }
    answer = await http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "logit_bias"
