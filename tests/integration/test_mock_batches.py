"""The mock provider's batch APIs, through the official SDKs the offload pool uses: OpenAI's
files and batches, Anthropic's message batches; their delay, partial failure, expiry, failure
and cancel knobs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest


async def _knobs(mock_url: str, **knobs: Any) -> None:
    """Every later batch's knobs (the mock's `POST /_control/batches`)."""
    async with httpx.AsyncClient() as http:
        (await http.post(f"{mock_url}/_control/batches", json=knobs)).raise_for_status()


def _line(i: int, model: str = "mock/echo") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": f"line {i}"}]}
    return {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}


@pytest.fixture
async def oai(mock_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{mock_url}/v1", api_key="k", max_retries=0)
    async with client:
        yield client


@pytest.fixture
async def claude(mock_url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=mock_url, api_key="k", max_retries=0)
    async with client:
        yield client
    await _knobs(mock_url)  # back to the defaults


async def _openai_batch(
    client: openai.AsyncOpenAI, lines: list[dict[str, Any]], **metadata: str
) -> str:
    jsonl = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    uploaded = await client.files.create(file=("in.jsonl", jsonl), purpose="batch")
    assert (uploaded.purpose, uploaded.bytes) == ("batch", len(jsonl))
    batch = await client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata or None,
    )
    return batch.id


async def _openai_ended(client: openai.AsyncOpenAI, batch_id: str) -> openai.types.Batch:
    deadline = time.monotonic() + 10
    while True:
        batch = await client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < deadline, batch.status
        await asyncio.sleep(0.05)


async def _jsonl(client: openai.AsyncOpenAI, file_id: str | None) -> dict[str, Any]:
    if file_id is None:
        return {}
    content = await client.files.content(file_id)
    return {line["custom_id"]: line for line in map(orjson.loads, content.content.splitlines())}


async def test_openai_batch_answers_each_line_after_its_delay(oai: openai.AsyncOpenAI) -> None:
    lines = [_line(i) for i in range(5)] + [_line(5, "mock/fail-400")]
    batch_id = await _openai_batch(oai, lines, mock_delay_s="0.3")
    assert (await oai.batches.retrieve(batch_id)).status == "in_progress"
    started = time.monotonic()
    ended = await _openai_ended(oai, batch_id)
    assert time.monotonic() - started > 0.1
    assert ended.status == "completed"
    assert ended.request_counts is not None
    assert (ended.request_counts.completed, ended.request_counts.failed) == (5, 1)
    out = await _jsonl(oai, ended.output_file_id)
    assert out["r3"]["response"]["status_code"] == 200
    assert out["r3"]["response"]["body"]["choices"][0]["message"]["content"] == "echo: line 3"
    assert out["r5"]["response"]["status_code"] == 400
    assert ended.error_file_id is None
    listed = await oai.batches.list(limit=5)
    assert listed.data[0].id == batch_id
    assert listed.data[0].metadata == {"mock_delay_s": "0.3"}


async def test_openai_batch_partial_expired_failed_and_cancelled(oai: openai.AsyncOpenAI) -> None:
    lines = [_line(i) for i in range(6)]
    partial = await _openai_ended(oai, await _openai_batch(oai, lines, mock_fail_every="3"))
    out = await _jsonl(oai, partial.output_file_id)
    codes = {k: v["response"]["status_code"] for k, v in out.items()}
    assert [k for k, code in sorted(codes.items()) if code != 200] == ["r2", "r5"]

    expired_id = await _openai_batch(oai, lines, mock_expire="true", mock_expire_keep="2")
    expired = await _openai_ended(oai, expired_id)
    assert expired.status == "expired"
    assert sorted(await _jsonl(oai, expired.output_file_id)) == ["r0", "r1"]
    errors = await _jsonl(oai, expired.error_file_id)
    assert sorted(errors) == ["r2", "r3", "r4", "r5"]
    assert errors["r4"]["error"]["code"] == "batch_expired"

    failed = await _openai_ended(oai, await _openai_batch(oai, lines, mock_fail="1"))
    assert (failed.status, failed.output_file_id) == ("failed", None)

    slow = await _openai_batch(oai, lines, mock_delay_s="60")
    cancelled = await oai.batches.cancel(slow)
    assert cancelled.status == "cancelled"
    assert (await oai.batches.retrieve(slow)).output_file_id is None


async def test_anthropic_batch_results_by_custom_id(
    claude: anthropic.AsyncAnthropic, mock_url: str
) -> None:
    await _knobs(mock_url, delay_s=0.2, fail_every=4)
    requests: list[Any] = [
        {
            "custom_id": f"r{i}",
            "params": {
                "model": "echo",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": f"line {i}"}],
            },
        }
        for i in range(8)
    ]
    created = await claude.messages.batches.create(requests=requests)
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 8
    deadline = time.monotonic() + 10
    while (
        batch := await claude.messages.batches.retrieve(created.id)
    ).processing_status != "ended":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert (batch.request_counts.succeeded, batch.request_counts.errored) == (6, 2)
    results = {r.custom_id: r.result async for r in await claude.messages.batches.results(batch.id)}
    assert sorted(results) == [f"r{i}" for i in range(8)]
    first = results["r0"]
    assert first.type == "succeeded"
    assert first.message.content[0].type == "text"
    assert first.message.content[0].text == "echo: line 0"
    assert results["r3"].type == "errored"


async def test_anthropic_expiry_and_cancel(claude: anthropic.AsyncAnthropic, mock_url: str) -> None:
    requests: list[Any] = [
        {"custom_id": f"r{i}", "params": {"model": "echo", "max_tokens": 16,
                                          "messages": [{"role": "user", "content": "hi"}]}}
        for i in range(3)
    ]  # fmt: skip
    await _knobs(mock_url, expire=True, expire_keep=1)
    expired = await claude.messages.batches.create(requests=requests)
    ended = await claude.messages.batches.retrieve(expired.id)
    assert ended.processing_status == "ended"
    assert (ended.request_counts.succeeded, ended.request_counts.expired) == (1, 2)

    await _knobs(mock_url, delay_s=60)
    slow = await claude.messages.batches.create(requests=requests)
    cancelled = await claude.messages.batches.cancel(slow.id)
    assert cancelled.processing_status == "ended"
    results = [r.result.type async for r in await claude.messages.batches.results(slow.id)]
    assert results == ["canceled"] * 3
