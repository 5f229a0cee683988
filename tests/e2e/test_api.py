"""The broker end to end, through its HTTP API, with the official `openai` SDK where it fits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from loadtest.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.smoke]

HELLO = [{"role": "user", "content": "Hello, broker"}]


async def test_sync_chat_through_the_openai_sdk(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(model="mock/echo", messages=HELLO)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "echo: Hello, broker"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0


async def test_many_concurrent_sync_calls_each_get_their_own_answer(
    sdk: openai.AsyncOpenAI,
) -> None:
    async def ask(i: int) -> str | None:
        messages = [{"role": "user", "content": f"number {i}"}]
        done = await sdk.chat.completions.create(model="mock/echo", messages=messages)  # type: ignore[arg-type]
        return done.choices[0].message.content

    answers = await asyncio.gather(*(ask(i) for i in range(40)))
    assert answers == [f"echo: number {i}" for i in range(40)]


async def test_models_lists_what_is_routable(sdk: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in sdk.models.list()]
    assert "mock/*" in models


async def test_async_submit_then_long_poll(http: httpx.AsyncClient) -> None:
    submitted = await http.post(
        "/v1/requests",
        json={
            "endpoint": "/v1/chat/completions",
            "body": {"model": "mock/latency-300", "messages": HELLO},
        },
    )
    assert submitted.status_code == 202
    doc = submitted.json()
    assert doc["status"] == "queued"
    assert submitted.headers["location"] == doc["url"]
    started = time.monotonic()
    polled = await http.get(f"/v1/requests/{doc['id']}", params={"wait": 20})
    assert polled.status_code == 200
    body = polled.json()
    assert body["status"] == "succeeded", body
    assert body["response"]["choices"][0]["message"]["content"] == "echo: Hello, broker"
    assert time.monotonic() - started < 10  # answered on completion, not at the end of wait


async def test_prefer_respond_async_on_the_openai_endpoint(http: httpx.AsyncClient) -> None:
    submitted = await http.post(
        "/v1/chat/completions",
        headers={"Prefer": "respond-async"},
        json={"model": "mock/echo", "messages": HELLO},
    )
    assert submitted.status_code == 202
    polled = await http.get(f"/v1/requests/{submitted.json()['id']}", params={"wait": 20})
    assert polled.json()["status"] == "succeeded"


async def test_long_poll_that_times_out_returns_the_current_status(
    http: httpx.AsyncClient,
) -> None:
    submitted = await http.post(
        "/v1/requests",
        json={
            "endpoint": "/v1/chat/completions",
            "body": {"model": "mock/latency-4000", "messages": HELLO},
        },
    )
    started = time.monotonic()
    polled = await http.get(f"/v1/requests/{submitted.json()['id']}", params={"wait": 1})
    elapsed = time.monotonic() - started
    assert polled.status_code == 200
    assert polled.json()["status"] in {"queued", "running"}
    assert 0.9 <= elapsed < 3.5


async def test_sync_wait_bounded_by_prefer_answers_202(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/v1/chat/completions",
        headers={"Prefer": "wait=1"},
        json={"model": "mock/latency-4000", "messages": HELLO},
    )
    assert answer.status_code == 202
    assert answer.json()["status"] == "queued"


async def test_provider_rejection_comes_back_with_its_status(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="mock/fail-400", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert caught.value.code == "invalid_value"


async def test_retryable_failures_are_retried_then_reported(
    stack: Stack, sdk: openai.AsyncOpenAI
) -> None:
    model = f"fail-503+tag-{time.monotonic_ns()}"
    with pytest.raises(openai.APIStatusError) as caught:
        await sdk.chat.completions.create(model=f"mock/{model}", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert caught.value.code == "provider_unavailable"
    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{stack.mock_url}/_stats")).json()
    assert stats["calls_by_model"][model] == 4, stats  # max_attempts, none duplicated


async def test_another_tenants_request_is_not_found(stack: Stack, http: httpx.AsyncClient) -> None:
    submitted = await http.post(
        "/v1/chat/completions",
        headers={"Prefer": "respond-async"},
        json={"model": "mock/echo", "messages": HELLO},
    )
    other = stack.new_key("tenant-b")
    seen = await http.get(
        f"/v1/requests/{submitted.json()['id']}", headers={"Authorization": f"Bearer {other}"}
    )
    assert seen.status_code == 404
    assert seen.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("headers", "content", "status", "code", "param"),
    [
        (
            {},
            b'{"model": "mock/echo", "messages": [{"role": "user", "content": "x"}]}',
            401,
            "invalid_api_key",
            None,
        ),
        ({"Authorization": "Bearer aib_wrong"}, b"{}", 401, "invalid_api_key", None),
        (None, b'{"model": "mock/echo", "messages": ', 400, "invalid_value", None),
        (None, b'{"model": "mock/echo", "messages": []}', 400, "invalid_value", "messages"),
        (
            None,
            b'{"model": "mock/echo", "messages": [{"role": "robot"}]}',
            400,
            "invalid_value",
            "messages[0].role",
        ),
        (
            None,
            b'{"model": "mock/echo", "messages": [{"role": "user"}], "temperature": 7}',
            400,
            "invalid_value",
            "temperature",
        ),
        (None, b'{"messages": [{"role": "user", "content": "x"}]}', 400, "invalid_value", "model"),
        (
            None,
            b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model_not_found",
            "model",
        ),
        (None, b"[1, 2]", 400, "invalid_value", None),
        (
            None,
            b'{"model": "mock/echo", "messages": [{"role": "user", "content": "'
            + b"x" * (5 * 1024 * 1024)
            + b'"}]}',
            413,
            "payload_too_large",
            None,
        ),
    ],
)
async def test_bad_input_gets_a_clear_openai_error(
    stack: Stack,
    headers: dict[str, str] | None,
    content: bytes,
    status: int,
    code: str,
    param: str | None,
) -> None:
    sent = {"Authorization": f"Bearer {stack.api_key}"} if headers is None else headers
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        answer = await client.post(
            "/v1/chat/completions",
            content=content,
            headers={**sent, "Content-Type": "application/json"},
        )
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["param"] == param
    assert error["message"]
    assert error["type"]


async def test_oversized_chunked_body_is_refused_while_streaming(stack: Stack) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "mock/echo", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"x" * 65536
        yield b'"}]}'

    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        answer = await client.post(
            "/v1/chat/completions",
            content=chunks(),
            headers={"Authorization": f"Bearer {stack.api_key}"},
        )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"


async def test_unknown_request_id_is_404(http: httpx.AsyncClient) -> None:
    answer = await http.get("/v1/requests/req_doesnotexist")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


async def test_health_and_metrics(http: httpx.AsyncClient, stack: Stack) -> None:
    ready = await http.get("/health/ready")
    assert ready.json() == {"status": "ok", "checks": {"kafka": "ok", "redis": "ok"}}
    assert (await http.get("/health/live")).status_code == 200
    assert (await http.get("/metrics")).status_code == 404  # the metrics port only
    metrics_port = f"http://127.0.0.1:{stack.metrics_ports['ingress']}"
    assert "python_info" in (await http.get(f"{metrics_port}/metrics")).text


async def test_a_failing_target_falls_back_to_the_next(sdk: openai.AsyncOpenAI) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(model="falls-back", messages=HELLO)  # type: ignore[arg-type]
    assert raw.parse().choices[0].message.content == "echo: Hello, broker"


async def test_a_refused_provider_key_falls_back_at_once(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    answer = await http.post(
        "/v1/chat/completions", json={"model": "refused-key", "messages": HELLO}
    )
    assert answer.status_code == 200
    request_id = answer.headers["x-request-id"]
    state = (await http.get(f"/v1/requests/{request_id}", params={"wait": 10})).json()
    assert state["served_by"] == {"provider": "mock", "model": "echo"}
    assert state["attempts"] == 2  # one refused, no retries on it, then the fallback


async def test_the_requests_own_fault_does_not_fall_back(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(model="bad-request", messages=HELLO)  # type: ignore[arg-type]


async def test_cost_is_reported_and_every_billed_call_is_on_the_usage_topic(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    from aibroker.kafka.clients import decode, make_consumer
    from schemas.envelopes import UsageEvent
    from topics.catalog import TopicNames

    answer = await http.post(
        "/v1/chat/completions",
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "price this"}]},
    )
    usage = answer.json()["usage"]
    # the test stack prices mock/echo at 0.50 in and 1.50 out per million tokens
    expected = (
        Decimal(usage["prompt_tokens"]) * Decimal("0.50")
        + Decimal(usage["completion_tokens"]) * Decimal("1.50")
    ) / 1_000_000
    assert Decimal(answer.headers["x-aibroker-cost"]) == expected
    request_id = answer.headers["x-request-id"]
    state = (await http.get(f"/v1/requests/{request_id}", params={"wait": 10})).json()
    assert Decimal(state["cost_usd"]) == expected

    names = TopicNames(stack.prefix)
    consumer = make_consumer(stack.kafka, names.usage, group_id=None)
    await consumer.start()
    try:
        events = []
        while batch := await consumer.getmany(timeout_ms=1500):
            events += [decode(UsageEvent, r.value) for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    mine = [e for e in events if e.request_id == request_id]
    assert len(mine) == 1
    assert mine[0].cost_usd == expected
    assert mine[0].tenant == "tenant-a"
    assert (mine[0].provider, mine[0].upstream_model) == ("mock", "echo")


async def test_openai_compatible_providers_get_the_request_as_sent(
    sdk: openai.AsyncOpenAI, stack: Stack
) -> None:
    """Nothing to translate: tools, images, JSON mode and the rest reach the provider as the
    client wrote them, only `model` changed to the upstream name."""
    tool: Any = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    image: Any = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}
    await sdk.chat.completions.create(
        model="mock/echo",
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}],
        tools=[tool],
        tool_choice="auto",
        response_format={"type": "json_object"},
        seed=3,
        logit_bias={"50256": -100},
    )
    async with httpx.AsyncClient() as client:
        wire = (await client.get(f"{stack.mock_url}/_last/openai")).json()
    assert wire["model"] == "echo"
    assert wire["tools"] == [tool]
    assert wire["messages"][0]["content"][1] == image
    assert (wire["seed"], wire["logit_bias"]) == (3, {"50256": -100})
    assert wire["response_format"] == {"type": "json_object"}
