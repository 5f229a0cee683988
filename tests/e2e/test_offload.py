"""Offload on the mock: a caller's batch of 1,000 lines with `offload: auto` goes through the
provider's batch API and costs half the on-demand price (in `cost_usd` and the usage events,
marked `provider_batch`); a provider batch that expires is finished on demand; an offload pool
killed mid-poll resumes from Redis, losing no line and billing none twice; cancelling the
caller's batch cancels the provider batch; Anthropic lines go through its Message Batches
API, Gemini lines through its Batch API (a partial batch's failed lines finished on demand)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from aibroker.prices import Billing, cost
from loadtest.stack import Stack
from schemas.batch_file import line_request_id
from schemas.envelopes import UsageEvent
from schemas.openai import Usage
from tests.e2e.conftest import running_stack
from tests.e2e.offloading import CLAUDE, GEMINI, LISTED, MODEL, Offloading, mock_stats, usage_of
from tests.e2e.test_batches import chat_lines, ended, jsonl, output, start_batch
from tests.services import KafkaService, RedisService
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        "AIBROKER_BATCH_EXPAND_PER_S": "2000",
        "AIBROKER_OFFLOAD_POLICY": "auto",
        "AIBROKER_OFFLOAD_MAX_AGE_S": "1",
        "AIBROKER_OFFLOAD_POLL_MIN_S": "0.3",
        "AIBROKER_OFFLOAD_POLL_MAX_S": "1",
        # genai-prices lists no batch price for this model: `auto` would keep it on demand.
        "AIBROKER_OFFLOAD_ALIAS_POLICY": json.dumps({CLAUDE: "always", GEMINI: "always"}),
    }
    with running_stack(kafka, redis_svc, tmp_path_factory.mktemp("offload"), extra_env=env) as s:
        yield s


async def run_batch(
    sdk: openai.AsyncOpenAI, n: int, timeout_s: float = 120
) -> tuple[Any, set[str]]:
    batch = await start_batch(sdk, jsonl(chat_lines(n, MODEL)))
    done = await ended(sdk, batch.id, timeout_s=timeout_s)
    ids = {line_request_id(batch.id, f"line-{i}") for i in range(n)}
    return done, ids


def on_demand_cost(event: UsageEvent) -> Decimal:
    assert LISTED is not None
    usage = Usage(
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        total_tokens=event.prompt_tokens + event.completion_tokens,
    )
    return cost(LISTED, usage)


async def test_an_offloaded_batch_costs_half(
    stack: Stack, offload: Offloading, sdk: openai.AsyncOpenAI
) -> None:
    before = await mock_stats(stack)
    done, ids = await run_batch(sdk, 1000)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (1000, 0)
    assert done.model_extra is not None
    assert done.model_extra["aibroker_offloaded_lines"] == 1000  # the caller sees the offload
    lines = await output(sdk, done.output_file_id)
    assert len(lines) == 1000
    assert {line["response"]["body"]["choices"][0]["message"]["content"] for line in lines} == {
        f"echo: n{i}" for i in range(1000)
    }
    after = await mock_stats(stack)
    assert after["on_demand"] == before["on_demand"]  # no line was called on demand
    assert after["lines"] - before["lines"] == 1000  # each went through a provider batch once
    events = await usage_of(stack, ids)
    assert len(events) == 1000  # one usage event per line
    assert all(e.provider_batch for e in events)
    billed = sum((e.cost_usd or Decimal(0) for e in events), Decimal(0))
    full = sum((on_demand_cost(e) for e in events), Decimal(0))
    assert billed > 0
    assert billed == full / 2
    assert LISTED is not None
    one = events[0]
    tokens = Usage(
        prompt_tokens=one.prompt_tokens,
        completion_tokens=one.completion_tokens,
        total_tokens=one.prompt_tokens + one.completion_tokens,
    )
    assert one.cost_usd == cost(LISTED, tokens, Billing(batch=True))


async def test_an_expired_provider_batch_finishes_on_demand(
    stack: Stack, offload: Offloading, sdk: openai.AsyncOpenAI, knobs: httpx.AsyncClient
) -> None:
    await knobs.post("/_control/batches", json={"expire": True, "expire_keep": 3})
    before = await mock_stats(stack)
    done, ids = await run_batch(sdk, 10)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert done.request_counts.completed == 10
    after = await mock_stats(stack)
    assert after["on_demand"] - before["on_demand"] == 7  # the 7 lines the batch did not answer
    events = await usage_of(stack, ids)
    assert sorted(bool(e.provider_batch) for e in events) == [False] * 7 + [True] * 3
    assert done.model_extra is not None
    assert done.model_extra["aibroker_offloaded_lines"] == 3  # the 7 finished on demand are not
    by_line = {e.request_id: e for e in events}
    assert len(by_line) == 10  # each line billed once


async def test_a_pool_killed_mid_poll_loses_and_bills_nothing_twice(
    stack: Stack, offload: Offloading, sdk: openai.AsyncOpenAI, knobs: httpx.AsyncClient
) -> None:
    await knobs.post("/_control/batches", json={"delay_s": 4})
    before = await mock_stats(stack)
    batch = await start_batch(sdk, jsonl(chat_lines(50, MODEL)))

    async def submitted() -> bool:
        return bool((await mock_stats(stack))["lines"] - before["lines"] >= 50)

    await eventually(submitted, what="the provider batch created", timeout_s=60)
    offload.kill()  # while it polls the provider batch
    offload.start()
    offload.assigned()
    done = await ended(sdk, batch.id, timeout_s=120)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert done.request_counts.completed == 50
    after = await mock_stats(stack)
    assert after["lines"] - before["lines"] == 50  # the provider batch was not submitted again
    assert after["on_demand"] == before["on_demand"]
    ids = {line_request_id(batch.id, f"line-{i}") for i in range(50)}
    events = await usage_of(stack, ids)
    assert {e.request_id for e in events} == ids
    assert len({e.id for e in events}) == 50  # a re-published event has the same id: billed once


async def test_anthropic_lines_go_through_message_batches(
    stack: Stack, offload: Offloading, sdk: openai.AsyncOpenAI
) -> None:
    async with httpx.AsyncClient(base_url=stack.mock_url) as mock:
        before = (await mock.get("/_batches")).json()
        calls_before = (await mock.get("/_stats")).json()["calls_by_model"]
        batch = await start_batch(sdk, jsonl(chat_lines(20, CLAUDE)))
        done = await ended(sdk, batch.id, timeout_s=120)
        after = (await mock.get("/_batches")).json()
        calls_after = (await mock.get("/_stats")).json()["calls_by_model"]
    assert done.status == "completed"
    assert done.request_counts is not None
    assert done.request_counts.completed == 20
    lines = await output(sdk, done.output_file_id)
    assert {line["response"]["body"]["choices"][0]["message"]["content"] for line in lines} == {
        f"echo: n{i}" for i in range(20)
    }
    assert after["batches"].get("anthropic", 0) - before["batches"].get("anthropic", 0) >= 1
    assert calls_after == calls_before  # nothing on demand
    ids = {line_request_id(batch.id, f"line-{i}") for i in range(20)}
    events = await usage_of(stack, ids)
    assert all(e.provider_batch and e.provider_batch.startswith("msgbatch_") for e in events)


async def test_cancelling_the_callers_batch_cancels_the_provider_batch(
    stack: Stack, offload: Offloading, sdk: openai.AsyncOpenAI, knobs: httpx.AsyncClient
) -> None:
    await knobs.post("/_control/batches", json={"delay_s": 600})
    before = await mock_stats(stack)
    batch = await start_batch(sdk, jsonl(chat_lines(20, MODEL)))

    async def submitted() -> bool:
        return bool((await mock_stats(stack))["lines"] - before["lines"] >= 20)

    await eventually(submitted, what="the provider batch created", timeout_s=60)
    await sdk.batches.cancel(batch.id)

    async def provider_cancelled() -> bool:
        return bool((await mock_stats(stack))["cancelled"] > before["cancelled"])

    await eventually(provider_cancelled, what="the provider batch cancelled", timeout_s=30)
    done = await ended(sdk, batch.id)
    assert done.status == "cancelled"
    assert (await mock_stats(stack))["on_demand"] == before["on_demand"]


async def test_gemini_lines_go_through_its_batch_api(
    stack: Stack, offload: Offloading, sdk: openai.AsyncOpenAI, knobs: httpx.AsyncClient
) -> None:
    await knobs.post("/_control/batches", json={"fail_every": 5})  # a partial batch
    async with httpx.AsyncClient(base_url=stack.mock_url) as mock:
        before = (await mock.get("/_batches")).json()
        calls_before = (await mock.get("/_stats")).json()["calls_by_model"].get("echo", 0)
        batch = await start_batch(sdk, jsonl(chat_lines(20, GEMINI)))
        done = await ended(sdk, batch.id, timeout_s=120)
        after = (await mock.get("/_batches")).json()
        calls_after = (await mock.get("/_stats")).json()["calls_by_model"].get("echo", 0)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert done.request_counts.completed == 20
    lines = await output(sdk, done.output_file_id)
    assert {line["response"]["body"]["choices"][0]["message"]["content"] for line in lines} == {
        f"echo: n{i}" for i in range(20)
    }
    assert after["batches"].get("gemini", 0) - before["batches"].get("gemini", 0) >= 1
    assert after["lines"] - before["lines"] == 20
    ids = {line_request_id(batch.id, f"line-{i}") for i in range(20)}
    events = await usage_of(stack, ids)
    assert len({e.request_id for e in events}) == len(events) == 20  # each billed once
    offloaded = [e for e in events if e.provider_batch]
    assert 0 < len(offloaded) < 20  # every 5th line of a provider batch failed there...
    assert calls_after - calls_before == 20 - len(offloaded)  # ...and was called on demand
    assert all(e.provider_batch and e.provider_batch.startswith("batches/") for e in offloaded)
