"""Tenants, quota and breakers through the whole broker: sync over quota gets 429, async work
waits and is admitted at exactly the allowed rate, two dispatchers share the state."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loadtest.stack import Stack
from tests.e2e.conftest import ROUTES, running_stack
from tests.services import KafkaService, RedisService
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A broker with two dispatcher replicas, and breakers that open after 4 calls."""
    logs = tmp_path_factory.mktemp("quota")
    env = {"AIBROKER_BREAKER_MIN_CALLS": "4", "AIBROKER_BREAKER_COOLDOWN_S": "60"}
    with running_stack(kafka, redis_svc, logs, routes_yaml=ROUTES, extra_env=env) as s:
        s._spawn("dispatcher-2", [sys.executable, "-m", "aibroker", "dispatcher"])
        yield s


async def tenant_client(
    stack: Stack, admin: httpx.AsyncClient, **tenant: Any
) -> tuple[str, httpx.AsyncClient]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    assert (await admin.put(f"/tenants/{name}", json=tenant)).status_code == 200
    key = (await admin.post("/keys", json={"tenant": name})).json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    return name, httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=60)


async def test_sync_over_the_rate_limit_gets_429_shared_by_both_dispatchers(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    _, client = await tenant_client(stack, admin, limits={"rpm": 4})
    async with client:
        answers = [await client.post("/v1/chat/completions", json=CHAT) for _ in range(10)]
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 4, statuses  # 3 partitions, 2 replicas, one budget
    refused = next(a for a in answers if a.status_code == 429)
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["param"] == "tenant.rpm"
    assert int(refused.headers["retry-after"]) >= 1


async def test_async_work_waits_and_is_admitted_at_the_allowed_rate(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    """rpm 30: a burst of 30 at once, then one every 2 s."""
    name, client = await tenant_client(stack, admin, limits={"rpm": 30})
    async with client:
        sent = time.time()
        answers = await asyncio.gather(
            *(
                client.post("/v1/requests", json={"endpoint": "/v1/chat/completions", "body": CHAT})
                for _ in range(33)
            )
        )
        assert {a.status_code for a in answers} == {202}
        ids = [a.json()["id"] for a in answers]
        docs = await asyncio.gather(
            *(client.get(f"/v1/requests/{i}", params={"wait": 30}) for i in ids)
        )
    finished = [d.json() for d in docs]
    assert {d["status"] for d in finished} == {"succeeded"}
    waited = sorted(d["queued_ms"] / 1000 for d in finished)
    assert sum(w < 1.5 for w in waited) == 30, waited
    for i, seconds in enumerate(waited[30:], start=1):  # never before its turn
        assert seconds >= 2 * i - 0.5, waited
    assert time.time() - sent < 20
    usage = (await admin.get(f"/tenants/{name}")).json()["usage"]
    assert usage["in_flight"] == 0


async def test_a_model_outside_the_tenants_list_is_refused(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    _, client = await tenant_client(stack, admin, models=["mock/*"])
    async with client:
        allowed = await client.post("/v1/chat/completions", json=CHAT)
        refused = await client.post("/v1/chat/completions", json={**CHAT, "model": "claude/echo"})
    assert allowed.status_code == 200
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"


async def test_a_spent_budget_refuses_with_insufficient_quota(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    name, client = await tenant_client(stack, admin, limits={"budget_usd_month": "0.000001"})
    async with client:
        first = await client.post("/v1/chat/completions", json=CHAT)
        assert first.status_code == 200
        spent = await eventually(
            lambda: _spend(admin, name), what="the result's cost counted", timeout_s=10
        )
        assert spent is not None
        refused = await client.post("/v1/chat/completions", json=CHAT)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "insufficient_quota"


async def _spend(admin: httpx.AsyncClient, name: str) -> str | None:
    spend: str = (await admin.get(f"/tenants/{name}")).json()["usage"]["spend_usd_month"]
    return spend if float(spend) > 0 else None


async def test_an_open_breaker_sends_work_straight_to_the_next_target(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    failing = await http.post("/v1/chat/completions", json={**CHAT, "model": "mock/fail-503"})
    assert failing.status_code == 502  # 4 attempts, every one failed: the breaker opened

    async def skipped() -> dict[str, Any] | None:
        doc = await http.post(
            "/v1/requests",
            json={"endpoint": "/v1/chat/completions", "body": {**CHAT, "model": "falls-back"}},
        )
        done = (await http.get(f"/v1/requests/{doc.json()['id']}", params={"wait": 20})).json()
        return done if done.get("attempts") == 1 else None

    done = await eventually(skipped, what="fail-503 skipped", timeout_s=10)
    assert done is not None
    assert done["status"] == "succeeded"
    assert done["served_by"] == {"provider": "mock", "model": "echo"}
