"""Batch jobs the caller bounds through the official `openai` SDK's batch `metadata`: a cost
ceiling and a failed-lines ceiling stop the batch, its unfinished lines cancelled and the reason
on the batch; line defaults reach the provider; a bad bound is a 400 naming its key. And the
flex tier: billed at the flex price, its 429s (flex capacity short) waited out, then served,
and asked for by a tenant's policy for its batch lines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from aibroker.prices import Billing, PriceTable, cost
from loadtest.stack import Stack
from schemas.openai import Usage
from tests.e2e.conftest import running_stack, wire_body
from tests.e2e.test_batches import chat_lines, ended, jsonl, output
from tests.services import KafkaService, RedisService

pytestmark = pytest.mark.e2e

SLOW = "mock/latency-6000"
"""Lines still running when a bound trips (the mock answers them after 6 s)."""
ECHO_COST = Decimal("0.0000035")
"""What one `mock/echo` line of `chat_lines` costs: 1 prompt token at 0.50 and 2 completion
tokens at 1.50 USD per million (the stack's prices file)."""


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {"AIBROKER_BATCH_EXPAND_PER_S": "1000"}
    with running_stack(kafka, redis_svc, tmp_path_factory.mktemp("bounds"), extra_env=env) as s:
        yield s


@pytest.fixture
async def mock(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The mock provider's control API; its faults are cleared after the test."""
    async with httpx.AsyncClient(base_url=stack.mock_url, timeout=10) as client:
        yield client
        await client.post("/_control", json={})


async def bounded(sdk: openai.AsyncOpenAI, lines: list[dict[str, Any]], **metadata: str) -> Any:
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    return await sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "bounded"} | {f"aibroker.{k}": v for k, v in metadata.items()},
    )


def slow_lines(n: int) -> list[dict[str, Any]]:
    lines = chat_lines(n, SLOW)
    for line in lines:
        line["custom_id"] = "slow-" + line["custom_id"]
    return lines


def extra(batch: Any) -> dict[str, Any]:
    """The broker's own fields on the SDK's batch object."""
    return dict(batch.model_extra or {})


async def test_a_batch_stops_at_its_cost_ceiling(sdk: openai.AsyncOpenAI) -> None:
    ceiling = ECHO_COST * 2  # reached by the second priced line
    batch = await bounded(sdk, chat_lines(4) + slow_lines(10), max_cost_usd=str(ceiling))
    done = await ended(sdk, batch.id, timeout_s=30)
    assert done.status == "cancelled"
    assert extra(done)["aibroker_stopped_reason"] == "max_cost_usd"
    assert Decimal(extra(done)["aibroker_cost_usd"]) >= ceiling
    assert done.errors is not None
    assert done.errors.data is not None
    [why] = done.errors.data
    assert why.code == "max_cost_usd_reached"
    assert why.param == "metadata.aibroker.max_cost_usd"
    assert done.metadata is not None
    assert done.metadata["job"] == "bounded"
    counts = done.request_counts
    assert counts is not None
    assert counts.total == 14
    assert 2 <= counts.completed <= 4
    errors = await output(sdk, done.error_file_id)
    slow = [line for line in errors if line["custom_id"].startswith("slow-")]
    assert len(slow) == 10  # every slow line was still running: all cancelled
    assert {line["error"]["code"] for line in slow} == {"batch_cancelled"}


async def test_a_batch_stops_past_its_failed_lines_ceiling(sdk: openai.AsyncOpenAI) -> None:
    failing = chat_lines(4, "mock/fail-400")
    batch = await bounded(sdk, failing + slow_lines(10), max_failed_lines="2")
    done = await ended(sdk, batch.id, timeout_s=30)
    assert done.status == "cancelled"
    assert extra(done)["aibroker_stopped_reason"] == "max_failed_lines"
    assert done.errors is not None
    assert done.errors.data is not None
    assert done.errors.data[0].code == "max_failed_lines_reached"
    errors = await output(sdk, done.error_file_id)
    refused = [line for line in errors if line["response"] is not None]
    assert 3 <= len(refused) <= 4  # the third failure tripped it
    assert {line["response"]["status_code"] for line in refused} == {400}
    cancelled = [line for line in errors if line["custom_id"].startswith("slow-")]
    assert {line["error"]["code"] for line in cancelled} == {"batch_cancelled"}
    assert len(cancelled) == 10


async def test_a_batch_within_its_bounds_completes(sdk: openai.AsyncOpenAI) -> None:
    lines = chat_lines(6) + chat_lines(1, "mock/fail-400")
    lines[-1]["custom_id"] = "bad"
    batch = await bounded(
        sdk, lines, max_cost_usd="1", max_failed_lines="1", max_failed_share="0.5"
    )
    done = await ended(sdk, batch.id)
    assert done.status == "completed"
    assert extra(done)["aibroker_stopped_reason"] is None
    assert Decimal(extra(done)["aibroker_cost_usd"]) == ECHO_COST * 6


async def test_line_defaults_reach_the_provider_under_what_a_line_sets(
    stack: Stack, sdk: openai.AsyncOpenAI
) -> None:
    [line] = chat_lines(1)
    line["body"]["max_tokens"] = 9
    defaults = '{"temperature": 0, "max_tokens": 256, "seed": 7}'
    batch = await bounded(sdk, [line], defaults=defaults)
    done = await ended(sdk, batch.id)
    assert done.status == "completed"
    sent = await wire_body(stack, "openai")
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0, 9, 7)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_cost_usd", "cheap"),
        ("max_failed_share", "1.5"),
        ("defaults", '{"temperature": 5}'),  # no line may run with it
        ("max_fails", "3"),  # not a bound: refused rather than ignored
    ],
)
async def test_a_bad_bound_is_a_400_naming_its_key(
    sdk: openai.AsyncOpenAI, key: str, value: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await bounded(sdk, chat_lines(1), **{key: value})
    assert refused.value.param == f"metadata.aibroker.{key}"
    assert f"aibroker.{key}" in refused.value.message


async def call_cost(sdk: openai.AsyncOpenAI, **body: Any) -> tuple[Decimal, Any]:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="mock/o4-mini", messages=[{"role": "user", "content": "flex"}], **body
    )
    return Decimal(raw.headers["x-aibroker-cost"]), raw.parse()


async def test_a_flex_call_is_billed_at_the_flex_price(
    stack: Stack, sdk: openai.AsyncOpenAI
) -> None:
    standard, _ = await call_cost(sdk)
    flex, answer = await call_cost(sdk, service_tier="flex")
    assert (await wire_body(stack, "openai"))["service_tier"] == "flex"  # passed on as it is
    assert answer.service_tier == "flex"
    assert standard > 0
    assert flex * 2 == standard  # OpenAI bills o4-mini's flex tier at its batch price


async def test_a_flex_429_is_waited_out_then_served(
    sdk: openai.AsyncOpenAI, mock: httpx.AsyncClient
) -> None:
    await mock.post("/_control", json={"flex_unavailable": 2})
    before = (await mock.get("/_stats")).json()["calls_by_model"].get("o4-mini", 0)
    _, answer = await call_cost(sdk, service_tier="flex")
    assert answer.choices[0].message.content == "echo: flex"
    after = (await mock.get("/_stats")).json()["calls_by_model"]["o4-mini"]
    assert after - before == 3  # two 429 resource_unavailable, then served


async def test_a_tenants_flex_policy_reaches_its_batch_lines(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    assert (await admin.put("/tenants/tenant-flex", json={"batch_service_tier": "flex"})).is_success
    key = stack.new_key("tenant-flex")
    lines = chat_lines(2, "mock/o4-mini")
    lines[1]["body"]["service_tier"] = "default"  # a line's own tier wins
    async with openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0) as sdk:
        done = await ended(sdk, (await bounded(sdk, lines)).id)
        assert done.status == "completed"
        answers = {line["custom_id"]: line for line in await output(sdk, done.output_file_id)}
    tiers = {c: line["response"]["body"]["service_tier"] for c, line in answers.items()}
    assert tiers == {"line-0": "flex", "line-1": "default"}
    price = PriceTable({}, {"mock": "openai"}).find("mock", "o4-mini")
    assert price is not None
    one_line = Usage(prompt_tokens=1, completion_tokens=2)
    flex, standard = cost(price, one_line, Billing(service_tier="flex")), cost(price, one_line)
    assert flex * 2 == standard
    assert Decimal(extra(done)["aibroker_cost_usd"]) == flex + standard
