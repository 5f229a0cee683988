"""What every answer carries for OpenAI's SDKs and for browsers: `x-request-id` (refusals
included), `openai-processing-ms`, `x-should-retry` with `retry-after-ms` beside `Retry-After`,
CORS only where configured; the admin views of rate limits, usage and health."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from aibroker.limits import Limits
from aibroker.settings import IngressSettings, Settings
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.quota import RedisQuota
from aibroker.stores.redis import RedisClient
from aibroker.stores.usage import RedisUsageLedger
from ingress.ratelimit_headers import duration
from ingress.retry_headers import retry_headers
from schemas.envelopes import UsageEvent
from tests.ingress_app import Served, serving

pytestmark = [pytest.mark.integration]

HELLO = [{"role": "user", "content": "hi"}]


def test_retry_headers_round_up_one_way() -> None:
    assert retry_headers(True, 0.2) == {
        "x-should-retry": "true",
        "Retry-After": "1",
        "retry-after-ms": "200",
    }
    assert retry_headers(True, 2.0001) == {
        "x-should-retry": "true",
        "Retry-After": "3",
        "retry-after-ms": "2001",
    }
    assert retry_headers(False, None) == {"x-should-retry": "false"}


async def test_refusals_carry_a_request_id_and_whether_to_retry(served: Served) -> None:
    tenant = await served.tenant()
    key, _ = await served.key(tenant)
    async with served.client(key) as client:
        missing = await client.get("/v1/requests/req_nope")
        too_big = await client.post(
            "/v1/chat/completions",
            content=b"x" * (5 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        )
        invalid = await client.post("/v1/chat/completions", json={"model": "mock/echo"})
        accepted = await client.post(
            "/v1/chat/completions",
            json={"model": "mock/echo", "messages": HELLO},
            headers={"Prefer": "respond-async"},
        )
    for answer, status in ((missing, 404), (too_big, 413), (invalid, 400)):
        assert answer.status_code == status
        assert answer.headers["x-request-id"].startswith("req_")
        assert answer.headers["x-should-retry"] == "false"
        assert int(answer.headers["openai-processing-ms"]) >= 0
    assert "x-aibroker-request-id" not in missing.headers  # refused: nothing was accepted
    assert accepted.headers["x-aibroker-request-id"] == accepted.json()["id"]
    async with served.client("aib_unknown") as client:
        refused = await client.get("/v1/models")
    assert refused.headers["x-request-id"].startswith("req_")


async def test_cors_is_off_unless_origins_are_set(settings: Settings) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with serving(settings) as off, off.client() as client:
        answer = await client.options("/v1/chat/completions", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    ingress = IngressSettings(cors_origins=["https://app.example"])
    async with serving(settings, ingress=ingress) as on, on.client() as client:
        answer = await client.options("/v1/chat/completions", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "https://app.example"
        simple = await client.get("/health/live", headers={"Origin": "https://app.example"})
        assert "x-request-id" in simple.headers["access-control-expose-headers"]


async def test_rate_limits_are_shown_and_reset(served: Served, redis: RedisClient) -> None:
    tenant = await served.tenant(limits={"rpm": 60, "concurrency": 4, "budget_usd_month": 10})
    quota = RedisQuota(redis, lease_s=60)
    scope = [(quota_scope(tenant), Limits(rpm=60, concurrency=4))]
    for i in range(3):
        assert (await quota.admit(f"req_{i}_{tenant}", tenant, scope, 1, time.time())).admitted
    async with served.admin() as admin:
        view = (await admin.get(f"/admin/v1/ratelimit/{tenant}")).json()
        assert view["buckets"]["rpm"]["limit"] == 60
        assert view["buckets"]["rpm"]["remaining"] in (57, 58)
        assert view["concurrency"] == {"limit": 4, "in_flight": 3}
        assert view["spend_usd_month"] == {"limit": "10", "spent": "0"}
        reset = (await admin.delete(f"/admin/v1/ratelimit/{tenant}")).json()
    assert reset["buckets"]["rpm"] == {"limit": 60, "remaining": 60, "reset_s": 0.0}
    assert reset["concurrency"]["in_flight"] == 0


async def test_usage_is_reported_by_group(served: Served, redis: RedisClient) -> None:
    tenant = await served.tenant()
    ledger = RedisUsageLedger(redis)
    now = time.time()
    for i, model in enumerate(["mock/a", "mock/a", "mock/b"]):
        event = UsageEvent(
            id=f"use_{i}_{tenant}",
            request_id=f"req_{i}",
            tenant=tenant,
            model=model,
            provider="mock",
            upstream_model="x",
            prompt_tokens=3,
            completion_tokens=4,
            cached_tokens=0,
            cost_usd=Decimal("0.5"),
            latency_ms=30,
            at=now,
        )
        assert await ledger.count(event.id or "", event)
    async with served.admin() as admin:
        answer = await admin.get("/admin/v1/usage", params={"tenant": tenant, "group_by": "model"})
        bad = await admin.get("/admin/v1/usage", params={"group_by": "colour"})
    rows = answer.json()["data"]
    assert [(r["model"], r["requests"], r["cost_usd"]) for r in rows] == [
        ("mock/a", 2, "1"),
        ("mock/b", 1, "0.5"),
    ]
    assert rows[0]["latency_ms"]["p50"] == 50
    assert bad.status_code == 400


async def test_detailed_health_is_for_admins(served: Served) -> None:
    async with served.admin() as admin:
        doc = (await admin.get("/health/detailed")).json()
    assert doc["checks"] == {"kafka": "ok", "redis": "ok"}
    assert doc["pools"]["mock"]["group"] == "aib-pool-external"
    assert "breakers" in doc
    async with served.client() as anonymous:
        assert (await anonymous.get("/health/detailed")).status_code == 401


def test_reset_times_are_written_as_openai_writes_them() -> None:
    assert [duration(s) for s in (0.02, 1, 59.5, 60, 90.25, 360)] == [
        "20ms",
        "1s",
        "59.5s",
        "1m0s",
        "1m30.25s",
        "6m0s",
    ]


async def test_answers_carry_the_tightest_rate_limit(served: Served, redis: RedisClient) -> None:
    tenant = await served.tenant(limits={"rpm": 60, "tpm": 1000})
    key, key_id = await served.key(tenant, limits={"rpm": 10})
    await RedisQuota(redis, lease_s=60).admit(
        f"req_x_{tenant}", tenant, [(quota_scope(tenant, key_id), Limits(rpm=10))], 1, time.time()
    )
    async with served.client(key) as client:
        answer = await client.post(
            "/v1/chat/completions",
            json={"model": "mock/echo", "messages": HELLO},
            headers={"Prefer": "respond-async"},
        )
    assert answer.status_code == 202
    assert answer.headers["x-ratelimit-limit-requests"] == "10"  # the key's, tighter
    assert answer.headers["x-ratelimit-remaining-requests"] == "9"
    assert answer.headers["x-ratelimit-reset-requests"].endswith("s")
    assert answer.headers["x-ratelimit-limit-tokens"] == "1000"  # the tenant's
    assert answer.headers["x-ratelimit-remaining-tokens"] == "1000"
    assert answer.headers["x-ratelimit-reset-tokens"] == "0ms"
