"""A provider down while async and batch work keeps arriving, at the shipped breaker and retry
settings: 30 s of 500, 503 or 429 answers (with `Retry-After: 1`), 30 s of calls that hang,
and 3 minutes of 500s. After it recovers every request succeeds (or, past its deadline,
expires: never `failed`), none is lost or answered twice, none reached the provider again
before the Retry-After it was given, and a sync call made during the outage is answered at
once. Each case prints one `outage:` line with its figures (run with `-s` to see them)."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import orjson
import pytest

from aibroker.settings import DispatcherSettings
from loadtest.history import TERMINAL, published_results
from loadtest.stack import Stack
from tests.e2e.conftest import running_stack
from tests.services import KafkaService, RedisService
from topics.catalog import TopicNames

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RETRY_AFTER_S = 1.0
SUBMITTED = 50
"""Async requests arrive at 5 a second for the first 10 s of the outage."""
WARM = 100
"""Before it, the provider serves 100 requests at 20 a second: the breaker's window holds
those successes when the outage begins, as a busy target's does in production."""
SYNC_AT_S = 15.0
"""When, into the outage, a sync call is made (the breaker is open by then)."""
BATCH_AT_S = 5.0
"""When, into the outage, a batch job is submitted."""
BATCH_LINES = 10


@dataclass(frozen=True)
class Outage:
    name: str
    fault: dict[str, Any]
    """What the mock is told (`POST /_control`) for the outage."""
    down_s: float
    deadline_s: float | None = None
    """Every other request is submitted with a deadline this far out (it ends `expired`)."""

    @property
    def retry_after(self) -> float | None:
        after = self.fault.get("retry_after")
        return float(after) if after is not None else None


def failing(status: int, down_s: float, deadline_s: float | None = None) -> Outage:
    fault = {"error_rate": 1.0, "error_status": status, "retry_after": RETRY_AFTER_S}
    name = f"{status}-{down_s:.0f}s"
    return Outage(name, fault, down_s, deadline_s)


CASES = [
    failing(500, 30),
    failing(503, 30),
    failing(429, 30),
    Outage("hang-30s", {"hang": True}, 30),
    failing(500, 180, deadline_s=60),
]


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One broker for every case, at the shipped breaker and retry settings (the test stack
    shortens the retry backoff; put the defaults back). Each case uses its own upstream model,
    so each has a breaker of its own."""
    defaults = DispatcherSettings()
    env = {
        "AIBROKER_DISPATCHER_BACKOFF_BASE_S": str(defaults.backoff_base_s),
        "AIBROKER_DISPATCHER_BACKOFF_MAX_S": str(defaults.backoff_max_s),
    }
    logs = tmp_path_factory.mktemp("outage")
    with running_stack(kafka, redis_svc, logs, extra_env=env) as s:
        yield s


def chat(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


async def submit(
    http: httpx.AsyncClient, model: str, text: str, deadline: float | None = None
) -> str:
    body: dict[str, Any] = {"endpoint": "/v1/chat/completions", "body": chat(model, text)}
    if deadline is not None:
        body["deadline"] = deadline
    answer = await http.post("/v1/requests", json=body)
    assert answer.status_code == 202, answer.text
    request_id: str = answer.json()["id"]
    return request_id


async def ends(http: httpx.AsyncClient, ids: list[str], timeout_s: float) -> list[dict[str, Any]]:
    """Each request's state once terminal (long-polled), or the last read after `timeout_s`."""
    until = time.monotonic() + timeout_s

    async def one(request_id: str) -> dict[str, Any]:
        while True:
            answer = await http.get(f"/v1/requests/{request_id}", params={"wait": 10})
            doc: dict[str, Any] = answer.json()
            if doc.get("status") in TERMINAL or time.monotonic() > until:
                return doc

    return list(await asyncio.gather(*(one(i) for i in ids)))


async def start_batch(sdk: openai.AsyncOpenAI, model: str, after_s: float) -> str:
    """A batch job of chat lines, started `after_s` from now; its id."""
    await asyncio.sleep(after_s)
    lines = [
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": chat(model, f"{model}-batch-{i}"),
        }
        for i in range(BATCH_LINES)
    ]
    data = io.BytesIO(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    uploaded = await sdk.files.create(file=("in.jsonl", data), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return batch.id


async def batch_end(sdk: openai.AsyncOpenAI, batch_id: str, timeout_s: float) -> Any:
    until = time.monotonic() + timeout_s
    while True:
        batch = await sdk.batches.retrieve(batch_id)
        if batch.status in {"completed", "failed", "expired", "cancelled"}:
            return batch
        if time.monotonic() > until:
            return batch
        await asyncio.sleep(0.5)


async def sync_call(http: httpx.AsyncClient, model: str, after_s: float) -> tuple[int, float]:
    """A sync chat call `after_s` from now: its status and how long its answer took."""
    await asyncio.sleep(after_s)
    began = time.monotonic()
    answer = await http.post("/v1/chat/completions", json=chat(model, f"{model}-sync"))
    return answer.status_code, time.monotonic() - began


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_async_work_waits_a_provider_outage_out(
    case: Outage, stack: Stack, http: httpx.AsyncClient
) -> None:
    model = f"mock/outage-{case.name}"
    client = openai.AsyncOpenAI(
        base_url=f"{stack.url}/v1", api_key=stack.api_key, max_retries=0, timeout=60
    )
    async with httpx.AsyncClient(base_url=stack.mock_url, timeout=30) as mock, client as sdk:

        async def warm(i: int) -> str:
            await asyncio.sleep(i / 20)
            return await submit(http, model, f"{model}-warm-{i}")

        served = await asyncio.gather(*(warm(i) for i in range(WARM)))
        assert {d["status"] for d in await ends(http, served, 60)} == {"succeeded"}

        timed: set[str] = set()

        async def during_outage(i: int) -> str:
            await asyncio.sleep(i / 5)
            limited = case.deadline_s is not None and i % 2 == 1
            deadline = time.time() + case.deadline_s if case.deadline_s and limited else None
            request_id = await submit(http, model, f"{model}-{i}", deadline)
            if deadline is not None:
                timed.add(request_id)
            return request_id

        await mock.post("/_control", json=case.fault)
        down_at = time.time()
        began = time.monotonic()
        sync = asyncio.create_task(sync_call(http, model, SYNC_AT_S))
        batch = asyncio.create_task(start_batch(sdk, model, BATCH_AT_S))
        ids = await asyncio.gather(*(during_outage(i) for i in range(SUBMITTED)))
        sync_status, sync_s = await sync
        batch_id = await batch
        await asyncio.sleep(max(0.0, case.down_s - (time.monotonic() - began)))
        await mock.post("/_control", json={})
        recovered = time.time()

        docs = dict(zip(ids, await ends(http, ids, 120), strict=True))
        all_done = time.time()
        ended = await batch_end(sdk, batch_id, 60)
        calls = (await mock.get("/_history")).json()["calls"]

    statuses = Counter(d.get("status") for d in docs.values())
    ours = [c for c in calls if c["model"] == model.removeprefix("mock/")]
    during = sum(1 for c in ours if down_at <= c["at"] < recovered)
    figures = {
        "accepted": len(ids),
        "succeeded": statuses["succeeded"],
        "failed": statuses["failed"],
        "expired": statuses["expired"],
        "batch": dict(ended.request_counts) if ended.request_counts else None,
        "calls_during_outage": during,
        "all_ended_s_after_recovery": round(all_done - recovered, 1),
        "sync": [sync_status, round(sync_s, 2)],
    }
    print(f"outage: {case.name} " + json.dumps(figures))

    failed = {i: d.get("error") for i, d in docs.items() if d.get("status") != "succeeded"}
    untimed_failed = {i: e for i, e in failed.items() if i not in timed}
    assert not untimed_failed, untimed_failed  # every one waited the outage out
    assert {docs[i]["status"] for i in timed} <= {"expired"}  # its deadline passed: expired
    counts = await published_results(stack.kafka, TopicNames(stack.prefix).results)
    assert {counts[i] for i in ids} == {1}  # one terminal result each: none lost, none twice

    assert ended.status == "completed", ended
    assert ended.request_counts is not None
    assert (ended.request_counts.completed, ended.request_counts.failed) == (BATCH_LINES, 0)

    # Sync work is answered at once: the breaker is open, so 503 without a call.
    assert sync_status >= 500
    assert sync_s < 5, sync_s

    if case.retry_after is not None:  # never called again before the Retry-After it gave
        times: dict[str, list[float]] = defaultdict(list)
        for call in ours:
            times[call["text"]].append(call["at"])
        for text, at in times.items():
            gaps = [b - a for a, b in itertools.pairwise(at)]
            assert all(g >= case.retry_after - 0.05 for g in gaps), (text, gaps)
