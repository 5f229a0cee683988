"""Killing parts of the broker while work is in flight: every accepted request still ends,
exactly once as the client sees it, with bounded duplicate work."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from aibroker.kafka import make_consumer
from aibroker.settings import KafkaSettings
from loadtest.stack import Stack
from tests.waiting import eventually
from topics.catalog import TopicNames

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N = 30


async def submit_all(client: httpx.AsyncClient, model: str) -> list[str]:
    async def one(i: int) -> str:
        answer = await client.post(
            "/v1/requests",
            json={
                "endpoint": "/v1/chat/completions",
                "body": {"model": model, "messages": [{"role": "user", "content": f"n{i}"}]},
            },
        )
        assert answer.status_code == 202
        request_id: str = answer.json()["id"]
        return request_id

    return list(await asyncio.gather(*(one(i) for i in range(N))))


async def final_states(client: httpx.AsyncClient, ids: list[str]) -> dict[str, dict[str, object]]:
    async def one(request_id: str) -> dict[str, object]:
        for _ in range(6):
            doc: dict[str, object] = (
                await client.get(f"/v1/requests/{request_id}", params={"wait": 10})
            ).json()
            if doc["status"] not in {"queued", "running"}:
                return doc
        return doc

    return dict(zip(ids, await asyncio.gather(*(one(i) for i in ids)), strict=True))


async def results_per_id(stack: Stack) -> Counter[str]:
    names = TopicNames(stack.prefix)
    settings = KafkaSettings(bootstrap=stack.bootstrap)
    consumer = make_consumer(settings, names.results, group_id=None)
    await consumer.start()
    counts: Counter[str] = Counter()
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for records in batch.values():
                counts.update(r.key.decode() for r in records)
    finally:
        await consumer.stop()
    return counts


def mock_calls(stack: Stack) -> int:
    calls: int = httpx.get(f"{stack.mock_url}/_stats").json()["calls"]
    return calls


async def test_consumer_sigkilled_mid_work(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=60) as client:
        ids = await submit_all(client, "mock/latency-1500")
        await eventually(lambda: _at_least(mock_calls(stack), 10), what="work in flight")
        in_flight_at_kill = mock_calls(stack)
        stack.kill("consumer", signal.SIGKILL)
        stack.start_service("consumer")
        states = await final_states(client, ids)
    assert {doc["status"] for doc in states.values()} == {"succeeded"}, states
    for i, request_id in enumerate(ids):
        answer = states[request_id]["response"]
        assert answer["choices"][0]["message"]["content"] == f"echo: n{i}"  # type: ignore[index]
    published = await results_per_id(stack)
    assert set(published) == set(ids)
    # Redelivered work is bounded by what was in flight when the consumer died.
    assert mock_calls(stack) <= N + in_flight_at_kill


async def test_consumer_sigtermed_drains_without_duplicates(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=60) as client:
        ids = await submit_all(client, "mock/latency-1000")
        await eventually(lambda: _at_least(mock_calls(stack), 10), what="work in flight")
        stack.kill("consumer", signal.SIGTERM)  # returns once it has drained and exited
        stack.start_service("consumer")
        states = await final_states(client, ids)
    assert {doc["status"] for doc in states.values()} == {"succeeded"}
    assert mock_calls(stack) == N  # drained work is committed, never redone
    assert max((await results_per_id(stack)).values()) == 1


async def _at_least(value: int, floor: int) -> bool:
    return value >= floor
