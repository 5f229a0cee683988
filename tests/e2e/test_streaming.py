"""`stream: true` through Kafka: chunks relayed as server-sent events, result kept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from loadtest.stack import Stack

pytestmark = [pytest.mark.e2e]

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "stream me some words"}]


@pytest.fixture
async def sdk(stack: Stack) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{stack.url}/v1", api_key=stack.api_key, max_retries=0
    ) as client:
        yield client


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


async def test_a_streamed_request_is_retrievable_afterwards(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as client:
        async with client.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "mock/echo", "messages": HELLO, "stream": True},
        ) as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            request_id = answer.headers["x-request-id"]
            lines = [line async for line in answer.aiter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        state = (await client.get(f"/v1/requests/{request_id}", params={"wait": 10})).json()
    assert state["status"] == "succeeded"
    message = state["response"]["choices"][0]["message"]
    assert message["content"] == "echo: stream me some words"


async def test_a_client_leaving_mid_stream_breaks_nothing(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as client:
        async with client.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "mock/echo", "messages": HELLO, "stream": True},
        ) as answer:
            request_id = answer.headers["x-request-id"]
            async for _ in answer.aiter_lines():
                break  # hang up after the first event
        state = (await client.get(f"/v1/requests/{request_id}", params={"wait": 10})).json()
        assert state["status"] == "succeeded"
        assert (await client.get("/health/ready")).status_code == 200


async def test_a_stream_failing_before_its_first_chunk_is_an_error_status(
    sdk: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(
            model="mock/fail-400",
            messages=HELLO,
            stream=True,
        )


async def test_a_stream_broken_midway_ends_with_an_error_event(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as client:
        async with client.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "mock/breaks-2", "messages": HELLO, "stream": True},
        ) as answer:
            request_id = answer.headers["x-request-id"]
            lines = [line async for line in answer.aiter_lines() if line]
        assert any('"error"' in line for line in lines)
        assert lines[-1] == "data: [DONE]"
        state = (await client.get(f"/v1/requests/{request_id}", params={"wait": 10})).json()
    assert state["status"] == "failed"
