"""Idempotency-Key and cancellation, end to end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from aibroker.kafka.clients import make_consumer
from loadtest.stack import Stack
from schemas.envelopes import UsageEvent
from tests.scrape import metric, scrape, value
from tests.waiting import eventually
from topics.catalog import TopicNames

pytestmark = [pytest.mark.e2e]

HELLO = [{"role": "user", "content": "once"}]


def tagged(prefix: str) -> str:
    return f"{prefix}+tag-{time.monotonic_ns()}"


async def mock_calls(stack: Stack, model: str) -> int:
    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{stack.mock_url}/_stats")).json()
    calls: int = stats["calls_by_model"].get(model, 0)
    return calls


async def test_concurrent_duplicates_make_one_request_and_share_its_answer(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    model = tagged("latency-300")
    body = {"model": f"mock/{model}", "messages": HELLO}
    headers = {"Idempotency-Key": f"k-{model}"}
    answers = await asyncio.gather(
        *(http.post("/v1/chat/completions", json=body, headers=headers) for _ in range(8))
    )
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.json()["id"] for a in answers}) == 1  # the same completion for all
    assert len({a.headers["x-request-id"] for a in answers}) == 1
    assert await mock_calls(stack, model) == 1


async def test_async_replay_returns_the_same_request(http: httpx.AsyncClient) -> None:
    submit = {"endpoint": "/v1/chat/completions", "body": {"model": "mock/echo", "messages": HELLO}}
    headers = {"Idempotency-Key": f"k-{time.monotonic_ns()}"}
    first = await http.post("/v1/requests", json=submit, headers=headers)
    second = await http.post("/v1/requests", json=submit, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]


async def test_a_key_reused_with_another_body_is_refused(http: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": f"k-{time.monotonic_ns()}"}
    ok = await http.post(
        "/v1/chat/completions", headers=headers, json={"model": "mock/echo", "messages": HELLO}
    )
    assert ok.status_code == 200
    other = await http.post(
        "/v1/chat/completions",
        headers=headers,
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "twice"}]},
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


async def test_cancelling_running_work_aborts_it(stack: Stack, http: httpx.AsyncClient) -> None:
    model = tagged("latency-1500")
    submitted = await http.post(
        "/v1/chat/completions",
        headers={"Prefer": "respond-async"},
        json={"model": f"mock/{model}", "messages": HELLO},
    )
    request_id = submitted.json()["id"]
    await eventually(lambda: mock_calls(stack, model), what="the provider call running")
    cancelled = await http.delete(f"/v1/requests/{request_id}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"]["code"] == "request_cancelled"
    # The pool says it aborted the call (a positive signal, where a sleep would also pass
    # when the pool were merely slow); its own cancelled result must not replace the first.
    await eventually(lambda: pool_cancelled(stack, "running"), what="the pool aborting the call")
    later = await http.get(f"/v1/requests/{request_id}")
    assert later.json()["status"] == "cancelled"
    assert request_id not in await billed(stack)  # aborted: no answer came, nothing billed


async def pool_cancelled(stack: Stack, when: str) -> float:
    """How many requests the external pool ended as cancelled (`running` or `queued`)."""
    url = f"http://127.0.0.1:{stack.metrics_ports['consumer']}/metrics"
    return await metric(url, "aibroker_pool_cancelled_total", when=when)


async def dispatched(stack: Stack, count: int) -> bool:
    """Whether the dispatcher has handled `count` requests from the work lanes."""
    url = f"http://127.0.0.1:{stack.metrics_ports['dispatcher']}/metrics"
    samples = await scrape(url)
    handled = sum(
        value(samples, "aibroker_worker_messages_total", worker=lane, outcome="ok")
        for lane in ("dispatcher.interactive", "dispatcher.batch")
    )
    return handled >= count


async def billed(stack: Stack) -> set[str]:
    """Request ids billed on the usage topic (one `ok` event per answered provider call)."""
    settings = stack.kafka
    consumer = make_consumer(settings, TopicNames(stack.prefix).usage, group_id=None)
    await consumer.start()
    ids: set[str] = set()
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for records in batch.values():
                events = [UsageEvent.model_validate_json(r.value) for r in records]
                ids.update(e.request_id for e in events if e.status == "ok")
    finally:
        await consumer.stop()
    return ids


async def test_cancelling_an_ended_request_changes_nothing(http: httpx.AsyncClient) -> None:
    done = await http.post("/v1/chat/completions", json={"model": "mock/echo", "messages": HELLO})
    request_id = done.headers["x-request-id"]
    answer = await http.delete(f"/v1/requests/{request_id}")
    assert answer.status_code == 200
    assert answer.json()["status"] == "succeeded"


async def test_cancelling_another_tenants_request_is_not_found(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    submitted = await http.post(
        "/v1/chat/completions",
        headers={"Prefer": "respond-async"},
        json={"model": "mock/echo", "messages": HELLO},
    )
    other = stack.new_key("tenant-c")
    answer = await http.delete(
        f"/v1/requests/{submitted.json()['id']}", headers={"Authorization": f"Bearer {other}"}
    )
    assert answer.status_code == 404


@pytest.mark.slow
async def test_queued_work_that_is_cancelled_never_reaches_the_provider(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(AIBROKER_CONSUMER_CONCURRENCY="1")
    blocker, victim = tagged("latency-2000"), tagged("echo")
    headers = {"Authorization": f"Bearer {stack.api_key}", "Prefer": "respond-async"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as http:
        first = await http.post(
            "/v1/chat/completions", json={"model": f"mock/{blocker}", "messages": HELLO}
        )
        await eventually(lambda: mock_calls(stack, blocker), what="the only slot is taken")
        second = await http.post(
            "/v1/chat/completions", json={"model": f"mock/{victim}", "messages": HELLO}
        )
        # Cancelled before the dispatcher reads it, the request would end there (its quota
        # check sees the flag); this test is about the pool, so it waits for the hand-over.
        await eventually(
            lambda: dispatched(stack, 2), what="the dispatcher forwarding both requests"
        )
        cancelled = await http.delete(f"/v1/requests/{second.json()['id']}")
        assert cancelled.json()["status"] == "cancelled"
        done = await http.get(f"/v1/requests/{first.json()['id']}", params={"wait": 20})
        assert done.json()["status"] == "succeeded"
        await eventually(lambda: pool_cancelled(stack, "queued"), what="the pool skipping it")
    assert await mock_calls(stack, victim) == 0


async def test_a_deadline_header_expires_work_that_cannot_start_in_time(
    http: httpx.AsyncClient,
) -> None:
    body = {"model": "mock/echo", "messages": [{"role": "user", "content": "too late"}]}
    rushed = {"X-Aibroker-Timeout": "0.001"}
    sync = await http.post("/v1/chat/completions", json=body, headers=rushed)
    assert sync.status_code == 408
    assert sync.json()["error"]["code"] == "deadline_exceeded"
    assert sync.headers["x-should-retry"] == "false"  # the SDKs would resubmit a 408
    queued = await http.post(
        "/v1/chat/completions", json=body, headers={**rushed, "Prefer": "respond-async"}
    )
    assert queued.status_code == 202
    done = await http.get(f"/v1/requests/{queued.json()['id']}", params={"wait": 10})
    assert done.json()["status"] == "expired"
    past = await http.post("/v1/chat/completions", json=body, headers={"X-Aibroker-Deadline": "1"})
    assert past.status_code == 400
    assert past.json()["error"]["param"] == "x-aibroker-deadline"
