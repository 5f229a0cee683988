"""`stream: true` through Kafka: chunks relayed as server-sent events, result kept."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

pytestmark = [pytest.mark.e2e, pytest.mark.smoke]

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "stream me some words"}]


async def test_the_openai_sdk_streams_through_the_broker(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="mock/echo",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream me some words"
    assert len(chunks) > 3  # word by word, not one lump
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "stop"


async def stream_lines(
    client: httpx.AsyncClient, model: str, *, hang_up: bool = False
) -> tuple[str, list[str]]:
    """POST a streamed chat; its request id and the non-empty lines it sent (only the first
    with `hang_up`, closing the connection right after)."""
    body = {"model": model, "messages": HELLO, "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines: list[str] = []
        async for line in answer.aiter_lines():
            if line:
                lines.append(line)
                if hang_up:
                    break
        return answer.headers["x-request-id"], lines


async def test_a_streamed_request_is_retrievable_afterwards(http: httpx.AsyncClient) -> None:
    request_id, lines = await stream_lines(http, "mock/echo")
    assert lines[-1] == "data: [DONE]"
    state = (await http.get(f"/v1/requests/{request_id}", params={"wait": 10})).json()
    assert state["status"] == "succeeded"
    message = state["response"]["choices"][0]["message"]
    assert message["content"] == "echo: stream me some words"


async def test_a_client_leaving_mid_stream_breaks_nothing(http: httpx.AsyncClient) -> None:
    request_id, _ = await stream_lines(http, "mock/echo", hang_up=True)
    state = (await http.get(f"/v1/requests/{request_id}", params={"wait": 10})).json()
    assert state["status"] == "succeeded"
    assert (await http.get("/health/ready")).status_code == 200


async def test_a_stream_failing_before_its_first_chunk_is_an_error_status(
    sdk: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(model="mock/fail-400", messages=HELLO, stream=True)


async def test_a_stream_broken_midway_ends_with_an_error_event(http: httpx.AsyncClient) -> None:
    request_id, lines = await stream_lines(http, "mock/breaks-2")
    assert any('"error"' in line for line in lines)
    assert lines[-1] == "data: [DONE]"
    state = (await http.get(f"/v1/requests/{request_id}", params={"wait": 10})).json()
    assert state["status"] == "failed"
