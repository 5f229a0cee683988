"""OpenAI ⇄ Gemini generateContent translation and Gemini's retry information."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from aibroker.errors import InvalidRequest
from consumers.providers.gemini.sdk import retry_delay
from consumers.providers.gemini.wire import StreamTranslator, from_response, to_generate_content
from loadtest import mock_gemini
from schemas.chunks import assemble

pytestmark = pytest.mark.unit
CALL = {"id": "call_a", "type": "function", "function": {"name": "w", "arguments": '{"c": 1}'}}


def translate(**body: Any) -> dict[str, Any]:
    return to_generate_content(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body},
        drop_unsupported=False,
    )


def test_a_conversation_with_a_tool_round_trip() -> None:
    call = translate(
        messages=[
            {"role": "developer", "content": "rules"},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        ],
        tools=[{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
        tool_choice={"type": "function", "function": {"name": "w"}},
        temperature=1.7,
        n=3,
        seed=1,
    )
    contents, config = call["contents"], call["config"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [{"functionCall": {"name": "w", "args": {"c": 1}}}]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "w", "response": {"content": "sunny"}}}
    ]
    assert config["systemInstruction"] == {"parts": [{"text": "rules"}]}
    assert config["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["w"]}
    }
    assert (config["temperature"], config["candidateCount"], config["seed"]) == (1.7, 3, 1)


def test_a_tool_result_must_answer_a_known_call() -> None:
    with pytest.raises(InvalidRequest) as raised:
        translate(messages=[{"role": "tool", "tool_call_id": "nope", "content": "x"}])
    assert raised.value.param == "messages[0].tool_call_id"


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "json_object"}, {"responseMimeType": "application/json"}),
        (
            {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
            {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}},
        ),
        ({"type": "text"}, {}),
    ],
)
def test_json_modes_are_native(response_format: dict[str, Any], expected: dict[str, Any]) -> None:
    assert translate(response_format=response_format)["config"] == expected


def test_answers_come_back_in_openai_shape() -> None:
    answer = {
        "candidates": [
            {
                "content": {"parts": [{"text": "thinking", "thought": True}, {"text": "Hi"}]},
                "finish_reason": "STOP",
            },
            {
                "content": {"parts": [{"function_call": {"name": "w", "args": {"c": 2}}}]},
                "finish_reason": "STOP",
                "index": 1,
            },
        ],
        "usage_metadata": {
            "prompt_token_count": 10,
            "candidates_token_count": 4,
            "thoughts_token_count": 6,
            "cached_content_token_count": 8,
            "tool_use_prompt_token_count": 5,
        },
    }
    done = from_response(answer, "gemini-x")
    first, second = done["choices"]
    assert first["message"]["content"] == "Hi"
    assert first["finish_reason"] == "stop"
    assert second["finish_reason"] == "tool_calls"
    assert orjson.loads(second["message"]["tool_calls"][0]["function"]["arguments"]) == {"c": 2}
    assert done["usage"]["completion_tokens"] == 10
    assert done["usage"]["prompt_tokens"] == 15  # a built-in tool's prompt is billed as input
    assert done["usage"]["prompt_tokens_details"] == {"cached_tokens": 8}


def test_stream_pieces_join_to_the_answer() -> None:
    translator = StreamTranslator("gemini-x", include_usage=True)
    pieces: list[dict[str, Any]] = [
        {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "lo"}]}}]},
        {
            "candidates": [
                {
                    "content": {"parts": [{"function_call": {"name": "w", "args": {}}}]},
                    "finish_reason": "STOP",
                }
            ],
            "usage_metadata": {"prompt_token_count": 3, "candidates_token_count": 2},
        },
    ]
    chunks = [c for p in pieces for c in translator.feed(p)] + translator.close()
    joined = assemble(chunks)
    reply = joined["choices"][0]
    assert reply["message"]["content"] == "Hello"
    assert reply["message"]["tool_calls"][0]["function"]["name"] == "w"
    assert reply["finish_reason"] == "tool_calls"
    assert joined["usage"]["total_tokens"] == 5
    assert translator.finished


def test_retry_info_is_read_from_the_error_body() -> None:
    assert retry_delay(mock_gemini.error_body(429, retry_s=7.5)) == 7.5
    assert retry_delay(mock_gemini.error_body(500)) is None
