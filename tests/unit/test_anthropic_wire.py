"""OpenAI ⇄ Anthropic Messages translation, error classification and call timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from anthropic import APIStatusError

from aibroker.errors import (
    InvalidRequest,
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from aibroker.routes import build_route_table
from aibroker.settings import AnthropicSettings, GeminiSettings, Settings
from consumers.pool.engine import call_timeout
from consumers.providers.anthropic.sdk import _classify
from consumers.providers.anthropic.stream import StreamTranslator
from consumers.providers.anthropic.wire import JSON_TOOL, from_message, to_messages
from loadtest import mock_anthropic
from schemas.chunks import assemble

pytestmark = pytest.mark.unit


def translate(**body: Any) -> dict[str, Any]:
    return to_messages(
        {"model": "alias", "messages": [{"role": "user", "content": "hi"}], **body},
        "claude-x",
        default_max_tokens=1024,
        drop_unsupported=False,
    )


def test_a_conversation_with_tools_and_images() -> None:
    params = translate(
        messages=[
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "weather?"},
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"c": 1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
        ],
        tools=[{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
        tool_choice={"type": "function", "function": {"name": "w"}},
        parallel_tool_calls=False,
        max_completion_tokens=99,
        stop="END",
        user="u-1",
    )
    assert params["model"] == "claude-x"
    assert params["system"] == "rules"
    assert params["max_tokens"] == 99
    assert [t["role"] for t in params["messages"]] == ["user", "assistant", "user"]
    assert params["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "url", "url": "https://x/a.png"},
    }
    assert params["messages"][1]["content"] == [
        {"type": "tool_use", "id": "t1", "name": "w", "input": {"c": 1}}
    ]
    assert params["messages"][2]["content"][0]["type"] == "tool_result"
    assert params["tools"] == [{"name": "w", "input_schema": {"type": "object"}}]
    assert params["tool_choice"] == {"type": "tool", "name": "w", "disable_parallel_tool_use": True}
    assert params["stop_sequences"] == ["END"]
    assert params["metadata"] == {"user_id": "u-1"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})],
)
def test_tool_choice(choice: str, expected: dict[str, str]) -> None:
    assert translate(tool_choice=choice)["tool_choice"] == expected


def test_default_max_tokens_and_json_mode() -> None:
    params = translate(response_format={"type": "json_object"})
    assert params["max_tokens"] == 1024
    assert params["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    assert params["tools"][0]["input_schema"] == {"type": "object"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 1.5),
        ("n", 3),
        ("seed", 1),
        ("logprobs", True),
        ("frequency_penalty", 0.5),
        ("made_up", 1),
    ],
)
def test_what_cannot_be_honoured_is_refused_or_dropped(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as raised:
        translate(**{field: value})
    assert raised.value.param == field
    dropped = to_messages(
        {"messages": [{"role": "user", "content": "x"}], field: value},
        "m",
        default_max_tokens=8,
        drop_unsupported=True,
    )
    assert field not in dropped


def test_bad_content_is_refused_with_its_place() -> None:
    with pytest.raises(InvalidRequest) as raised:
        translate(messages=[{"role": "user", "content": [{"type": "input_audio"}]}])
    assert raised.value.param == "messages[0].content[0].type"


def test_answers_come_back_in_openai_shape() -> None:
    message = {
        "id": "msg_1",
        "model": "claude-x",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "t9", "name": "w", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 90,
            "cache_creation_input_tokens": 20,
        },
    }
    done = from_message(message, json_mode=False)
    choice = done["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert orjson.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "city": "Paris"
    }
    assert done["usage"]["prompt_tokens"] == 120  # cache reads and writes are prompt tokens
    assert done["usage"]["prompt_tokens_details"] == {"cached_tokens": 90, "cache_write_tokens": 20}


def translate_stream(
    events: list[dict[str, Any]], json_mode: bool, include_usage: bool
) -> list[dict[str, Any]]:
    translator = StreamTranslator(json_mode, include_usage)
    return [chunk for event in events for chunk in translator.feed(event)]


def events_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    async def collect() -> list[bytes]:
        return [piece async for piece in mock_anthropic.stream(body, None)]

    events = []
    for piece in asyncio.run(collect()):
        data = piece.decode().split("data: ", 1)[1]
        events.append(orjson.loads(data))
    return events


@pytest.mark.parametrize("with_tool", [False, True])
def test_a_stream_joins_to_the_same_answer(with_tool: bool) -> None:
    params = translate(
        messages=[{"role": "user", "content": "call the tool" if with_tool else "one two"}],
        tools=[{"type": "function", "function": {"name": "w"}}],
        tool_choice="required" if with_tool else "none",
    )
    events = events_of(params)
    joined = assemble(translate_stream(events, json_mode=False, include_usage=True))
    message = {
        "content": [],
        "stop_reason": next(e for e in events if e["type"] == "message_delta")["delta"][
            "stop_reason"
        ],
    }
    assert (
        joined["choices"][0]["finish_reason"]
        == from_message(message, False)["choices"][0]["finish_reason"]
    )
    reply = joined["choices"][0]["message"]
    if with_tool:
        assert reply["tool_calls"][0]["function"]["name"] == "w"
        assert orjson.loads(reply["tool_calls"][0]["function"]["arguments"]) == {
            "echo": "call the tool"
        }
    else:
        assert reply["content"] == "echo: one two"
    assert joined["usage"]["completion_tokens"] > 0


def status_error(status: int, body: dict[str, Any], headers: dict[str, str]) -> APIStatusError:
    request = httpx.Request("POST", "https://api.anthropic.com/v1/messages")
    response = httpx.Response(status, headers=headers, request=request)
    return APIStatusError("x", response=response, body=body)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        (429, "rate_limit_error", ProviderRateLimited),
        (529, "overloaded_error", ProviderUnavailable),
        (500, "api_error", ProviderUnavailable),
        (401, "authentication_error", ProviderAuthFailed),
        (400, "invalid_request_error", ProviderRejected),
        (200, "overloaded_error", ProviderUnavailable),  # an error event inside a stream
        (200, "invalid_request_error", ProviderRejected),
    ],
)
def test_errors_are_classified_by_status_or_type(
    status: int, kind: str, expected: type[Exception]
) -> None:
    body = mock_anthropic.error_body(400 if kind == "invalid_request_error" else 500)
    body["error"]["type"] = kind
    error = _classify(status_error(status, body, {"retry-after": "7"}))
    assert isinstance(error, expected)
    if expected is ProviderRateLimited:
        assert error.retry_after == 7


def test_the_deadline_cuts_the_call_timeout() -> None:
    assert call_timeout(120, None) == 120
    assert call_timeout(120, 1000.0, now=990.0) == 10
    assert call_timeout(120, 1000.0, now=999.9) == 1.0
    assert call_timeout(5, 1000.0, now=900.0) == 5


def test_provider_groups_enable_their_kind() -> None:
    settings = Settings(
        anthropic=AnthropicSettings(api_key="a"), gemini=GeminiSettings(api_key="g")
    )
    providers = build_route_table(settings).providers
    assert providers["anthropic"].kind == "anthropic"
    assert providers["anthropic"].base_url == "https://api.anthropic.com"
    assert providers["gemini"].kind == "gemini"
    assert "openai" not in providers
