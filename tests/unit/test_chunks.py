import pytest

from schemas.chunks import as_chunk, assemble

pytestmark = pytest.mark.unit

HEAD = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def chunk(delta: dict[str, object], finish: str | None = None, index: int = 0) -> dict[str, object]:
    return {**HEAD, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def test_content_is_joined_and_the_finish_reason_and_usage_kept() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    done = assemble(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            {**HEAD, "choices": [], "usage": usage},
        ]
    )
    assert done["object"] == "chat.completion"
    assert done["id"] == "c1"
    assert done["choices"] == [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello"}}
    ]
    assert done["usage"] == usage


def test_tool_calls_are_joined_by_index() -> None:
    done = assemble(
        [
            chunk(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ],
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "now", "arguments": "{}"},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            chunk({}, "tool_calls"),
        ]
    )
    message = done["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    ]
    assert done["choices"][0]["finish_reason"] == "tool_calls"


def test_several_choices_stay_apart() -> None:
    done = assemble(
        [
            chunk({"content": "a"}, index=0),
            chunk({"content": "b"}, index=1),
            chunk({"content": "c"}, index=0),
        ]
    )
    assert [c["message"]["content"] for c in done["choices"]] == ["ac", "b"]


def test_a_whole_answer_becomes_one_chunk_that_assembles_back() -> None:
    whole = {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    one = as_chunk(whole)
    assert one["object"] == "chat.completion.chunk"
    assert assemble([one]) == whole
