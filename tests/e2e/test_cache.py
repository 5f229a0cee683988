"""The exact response cache end to end, through the `openai` SDK and HTTP: a repeat is served
without a provider call (the mock's random completion id comes back unchanged), every key
field misses when it changes, `Cache-Control` and the policy bypass it, errors are never
stored, a stream is replayed as chunks, racing misses and identical batch lines make one
call, one tenant never gets another's answer, and the admin API counts and clears it. A hit is
answered by ingress alone (the dispatcher never sees it), and still recorded as every end is:
its result (status document, Idempotency-Key replay) and its usage event, marked cached."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import orjson
import pytest

from aibroker.kafka.clients import make_consumer, topic_partitions
from loadtest.stack import Stack
from tests.e2e.conftest import running_stack
from tests.e2e.test_batches import ended, jsonl, start_batch
from tests.scrape import metric
from tests.services import KafkaService, RedisService
from tests.waiting import eventually
from topics.catalog import TopicNames

pytestmark = pytest.mark.e2e

CACHE = "x-aibroker-cache"


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {"AIBROKER_CACHE_ENABLED": "true", "AIBROKER_BATCH_EXPAND_PER_S": "200"}
    with running_stack(kafka, redis_svc, tmp_path_factory.mktemp("cache"), extra_env=env) as s:
        yield s


def ask(text: str | None = None, **extra: Any) -> dict[str, Any]:
    """A deterministic chat body with a prompt no other test sends."""
    content = text or f"cache me {uuid.uuid4().hex}"
    return {
        "model": "mock/echo",
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        **extra,
    }


async def calls(stack: Stack, body: dict[str, Any]) -> int:
    """How many times the mock provider was called with `body`'s prompt."""
    text = body["messages"][-1]["content"]
    async with httpx.AsyncClient() as client:
        history = (await client.get(f"{stack.mock_url}/_history")).json()["calls"]
    return sum(c["text"] == text for c in history)


async def serving(stack: Stack) -> None:
    """Wait for the pool to serve (a fresh stack's pool may take a while to get its
    partitions): a test of racing requests must not wait out the pool's start under a lock."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=120) as client:
        answer = await client.post("/v1/chat/completions", json=ask())
        assert answer.status_code == 200, answer.text


async def chat(http: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    answer = await http.post("/v1/chat/completions", json=body, headers=headers)
    assert answer.status_code in {200, 400}, answer.text
    return answer


async def test_a_repeat_is_a_hit_through_the_sdk(sdk: openai.AsyncOpenAI) -> None:
    body = ask()
    first = await sdk.chat.completions.with_raw_response.create(**body)
    second = await sdk.chat.completions.with_raw_response.create(**body)
    assert (first.headers[CACHE], second.headers[CACHE]) == ("miss", "hit")
    one, two = first.parse(), second.parse()
    assert two.id == one.id  # the mock makes a new id per call: no second call was made
    assert two.choices[0].message.content == one.choices[0].message.content
    assert two.usage is not None
    assert one.usage is not None
    assert two.usage.total_tokens == one.usage.total_tokens  # usage reported
    assert second.headers["x-aibroker-cost"] == "0"
    assert first.headers["x-aibroker-cost"] != "0"


KEY_CHANGES: list[dict[str, Any]] = [
    {"temperature": 0.0, "seed": 1},
    {"max_tokens": 7},
    {"stop": ["zz"]},
    {"top_p": 0.5},
    {"response_format": {"type": "json_object"}},
    {
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "tool_choice": "none",
    },
    {"model": "mock/latency-1"},
]


@pytest.mark.parametrize("change", KEY_CHANGES, ids=lambda c: ",".join(c))
async def test_a_change_to_a_key_field_misses(
    http: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    body = ask()
    first = await chat(http, body)
    changed = await chat(http, {**body, **change})
    assert (first.headers[CACHE], changed.headers[CACHE]) == ("miss", "miss")
    assert changed.json()["id"] != first.json()["id"]
    again = await chat(http, {**body, **change})
    assert again.headers[CACHE] == "hit"


async def test_fields_outside_the_key_still_hit(http: httpx.AsyncClient) -> None:
    body = ask()
    first = await chat(http, body)
    other = await chat(http, {**body, "user": "someone-else", "metadata": {"run": "2"}})
    assert other.headers[CACHE] == "hit"
    assert other.json()["id"] == first.json()["id"]


async def test_a_non_deterministic_request_bypasses_unless_it_opts_in(
    http: httpx.AsyncClient,
) -> None:
    body = ask(temperature=0.7)
    one, two = await chat(http, body), await chat(http, body)
    assert (one.headers[CACHE], two.headers[CACHE]) == ("bypass", "bypass")
    assert one.json()["id"] != two.json()["id"]
    opted = [await chat(http, body, **{CACHE: "allow"}) for _ in range(2)]
    assert [a.headers[CACHE] for a in opted] == ["miss", "hit"]


async def test_no_cache_stores_without_lookup_and_no_store_does_neither(
    http: httpx.AsyncClient,
) -> None:
    body = ask()
    fresh = await chat(http, body, **{"cache-control": "no-cache"})
    assert fresh.headers[CACHE] == "bypass"
    later = await chat(http, body)
    assert later.headers[CACHE] == "hit"
    assert later.json()["id"] == fresh.json()["id"]  # no-cache stored what it got
    again = await chat(http, body, **{"cache-control": "no-cache"})
    assert again.json()["id"] != fresh.json()["id"]  # and never looked up

    unstored = ask()
    kept_out = await chat(http, unstored, **{"cache-control": "no-store"})
    assert kept_out.headers[CACHE] == "bypass"
    after = await chat(http, unstored)
    assert after.headers[CACHE] == "miss"
    assert after.json()["id"] != kept_out.json()["id"]


async def test_errors_are_never_cached(http: httpx.AsyncClient) -> None:
    body = ask(model="mock/fail-400")
    answers = [await chat(http, body) for _ in range(2)]
    assert [a.status_code for a in answers] == [400, 400]
    assert [a.headers[CACHE] for a in answers] == ["miss", "miss"]


async def test_a_stream_is_replayed_as_chunks(sdk: openai.AsyncOpenAI) -> None:
    body = ask(stream_options={"include_usage": True})

    async def streamed() -> tuple[str, list[Any]]:
        raw = await sdk.chat.completions.with_raw_response.create(**body, stream=True)
        chunks = [c async for c in raw.parse()]
        return raw.headers[CACHE], chunks

    first, second = await streamed(), await streamed()
    assert (first[0], second[0]) == ("miss", "hit")
    text = [
        "".join(c.choices[0].delta.content or "" for c in s[1] if c.choices)
        for s in (first, second)
    ]
    assert text[0] == text[1]
    assert text[0].startswith("echo: cache me")
    assert len(second[1]) >= 2  # content, then the finish reason: a stream, not one blob
    assert second[1][-1].usage is not None
    assert {c.id for c in second[1]} == {first[1][0].id}


async def test_racing_identical_misses_make_one_call(stack: Stack, http: httpx.AsyncClient) -> None:
    await serving(stack)
    body = ask(model="mock/latency-700")
    answers = await asyncio.gather(*(chat(http, body) for _ in range(6)))
    assert len({a.json()["id"] for a in answers}) == 1  # one provider call answered all six
    assert sorted(a.headers[CACHE] for a in answers) == ["hit"] * 5 + ["miss"]
    assert await calls(stack, body) == 1


async def test_identical_batch_lines_are_called_once(stack: Stack, sdk: openai.AsyncOpenAI) -> None:
    await serving(stack)
    body = ask(model="mock/latency-300")
    lines = [
        {"custom_id": f"same-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        for i in range(4)
    ]
    batch = await start_batch(sdk, jsonl(lines))
    done = await ended(sdk, batch.id)
    assert done.status == "completed", done
    assert done.output_file_id is not None
    content = await sdk.files.content(done.output_file_id)
    rows = [orjson.loads(line) for line in content.content.splitlines() if line]
    assert len(rows) == 4
    assert len({r["response"]["body"]["id"] for r in rows}) == 1
    assert sorted(r["x_aibroker_cache"] for r in rows) == ["hit"] * 3 + ["miss"]
    assert await calls(stack, body) == 1


async def test_one_tenant_never_gets_anothers_answer(stack: Stack, http: httpx.AsyncClient) -> None:
    body = ask()
    mine = await chat(http, body)
    assert (await chat(http, body)).headers[CACHE] == "hit"
    other_key = stack.new_key("tenant-b")
    async with httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {other_key}"}, timeout=30
    ) as other:
        theirs = await chat(other, body)
    assert theirs.headers[CACHE] == "miss"
    assert theirs.json()["id"] != mine.json()["id"]


async def test_an_async_request_says_hit_in_its_status(http: httpx.AsyncClient) -> None:
    body = ask()
    await chat(http, body)
    submitted = await http.post(
        "/v1/chat/completions", json=body, headers={"prefer": "respond-async"}
    )
    assert submitted.status_code == 202
    assert submitted.json()["status"] == "succeeded"  # answered at ingress: already done
    at_once = await http.get(submitted.headers["location"])
    assert at_once.status_code == 200, at_once.text  # recorded before the 202 went out
    polled = await http.get(submitted.headers["location"], params={"wait": 20})
    doc = polled.json()
    assert doc["status"] == "succeeded", doc
    assert doc["cache"] == "hit"
    assert doc["cost_usd"] == "0"
    assert polled.headers.get(CACHE) is None or polled.headers[CACHE] == "hit"


@pytest.fixture
async def admin_api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as client:
        yield client


async def test_admin_counts_and_clears_the_cache(
    http: httpx.AsyncClient, admin_api: httpx.AsyncClient
) -> None:
    body = ask()
    await chat(http, body)
    assert (await chat(http, body)).headers[CACHE] == "hit"
    stats = await admin_api.get("/admin/v1/cache/stats", params={"tenant": "tenant-a"})
    assert stats.status_code == 200, stats.text
    row = next(r for r in stats.json()["data"] if r["model"] == "mock/echo")
    assert row["hit"] >= 1
    assert row["miss"] >= 1
    assert float(row["saved_usd"]) > 0
    assert stats.json()["entries"] >= 1
    refused = await http.delete("/admin/v1/cache")
    assert refused.status_code in {401, 403}
    cleared = await admin_api.delete(
        "/admin/v1/cache", params={"tenant": "tenant-a", "model": "mock/echo"}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["deleted"] >= 1
    assert (await chat(http, body)).headers[CACHE] == "miss"

    async def audited() -> bool:
        log = await admin_api.get("/admin/v1/audit", params={"action": "cache.clear"})
        return log.status_code == 200 and any(
            e["action"] == "cache.clear" for e in log.json()["data"]
        )

    await eventually(audited, what="the cache clear audited")


async def cache_outcomes(stack: Stack, process: str, outcome: str) -> float:
    """How many requests `process` (`ingress`, `dispatcher`) counted as `outcome`."""
    url = f"http://127.0.0.1:{stack.metrics_ports[process]}/metrics"
    return await metric(url, "aibroker_cache_requests_total", outcome=outcome)


async def usage_event(stack: Stack, request_id: str, timeout_s: float = 20) -> dict[str, Any]:
    """The usage event of `request_id`, read from the stack's `usage` topic."""
    topic = TopicNames(stack.prefix).usage
    consumer = make_consumer(stack.kafka, group_id=None)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    event: dict[str, Any] = orjson.loads(r.value or b"{}")
                    if event.get("request_id") == request_id:
                        return event
    finally:
        await consumer.stop()
    raise AssertionError(f"no usage event for {request_id} within {timeout_s} s")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_a_hit_is_answered_by_ingress_alone(
    stack: Stack, http: httpx.AsyncClient, stream: bool
) -> None:
    body = ask()
    stored = await chat(http, body)
    at_ingress = await cache_outcomes(stack, "ingress", "hit")
    at_dispatcher = await cache_outcomes(stack, "dispatcher", "hit")
    async with http.stream("POST", "/v1/chat/completions", json={**body, "stream": stream}) as hit:
        assert hit.status_code == 200
        text = (await hit.aread()).decode()
    assert hit.headers[CACHE] == "hit"
    assert hit.headers["x-aibroker-cost"] == "0"
    if stream:
        events = [line.removeprefix("data: ") for line in text.splitlines() if line]
        assert events[-1] == "[DONE]"
        chunks = [orjson.loads(e) for e in events[:-1]]
        assert len(chunks) == 2  # the content, then the finish reason
        assert {c["id"] for c in chunks} == {stored.json()["id"]}
        said = chunks[0]["choices"][0]["delta"]["content"]
        assert said == stored.json()["choices"][0]["message"]["content"]
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    else:
        assert orjson.loads(text) == stored.json()
    assert await cache_outcomes(stack, "ingress", "hit") == at_ingress + 1
    assert await cache_outcomes(stack, "dispatcher", "hit") == at_dispatcher  # never reached


async def test_a_hit_at_ingress_is_recorded_as_its_end(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    body = ask()
    stored = await chat(http, body)
    hit = await chat(http, body)
    assert hit.headers[CACHE] == "hit"
    request_id = hit.headers["x-aibroker-request-id"]

    async def recorded() -> dict[str, Any]:
        polled = await http.get(f"/v1/requests/{request_id}", params={"wait": 10})
        found: dict[str, Any] = polled.json() if polled.status_code == 200 else {}
        return found

    doc = await eventually(recorded, what="the hit's status document")
    assert doc["status"] == "succeeded", doc
    assert doc["cache"] == "hit"
    assert doc["cost_usd"] == "0"
    assert doc["response"]["id"] == stored.json()["id"]
    event = await usage_event(stack, request_id)
    assert event["cached"] is True
    assert Decimal(event["cost_usd"]) == 0
    assert Decimal(event["saved_usd"]) > 0  # what the provider call cost the first time
    assert event["prompt_tokens"] == stored.json()["usage"]["prompt_tokens"]


async def test_an_idempotent_retry_of_a_hit_answers_as_it(http: httpx.AsyncClient) -> None:
    body = ask()
    await chat(http, body)
    key = {"idempotency-key": f"idem-{uuid.uuid4().hex}"}
    first = await chat(http, body, **key)
    again = await chat(http, body, **key)
    assert (first.headers[CACHE], again.headers[CACHE]) == ("hit", "hit")
    assert again.headers["x-aibroker-request-id"] == first.headers["x-aibroker-request-id"]
    assert again.json() == first.json()
