"""API keys over their life: expiry, revocation, rotation with a grace period, a key's own model
list, and a tenant that is deactivated or deleted (its keys are cut off within the key cache's
TTL, 0.3 s here). Ingress in-process on the suite's Kafka and Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from aibroker.settings import Settings
from tests.ingress_app import Served
from tests.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.smoke]

HELLO = [{"role": "user", "content": "hi"}]


async def status_of(served: Served, key: str) -> int:
    async with served.client(key) as client:
        return (await client.get("/v1/models")).status_code


async def refused(served: Served, key: str) -> bool:
    return await status_of(served, key) == 401


async def test_an_expired_key_is_refused(served: Served) -> None:
    tenant = await served.tenant()
    key, _ = await served.key(tenant, expires_at=time.time() + 1.5, name="short-lived")
    assert await status_of(served, key) == 200
    await asyncio.sleep(1.6)
    async with served.client(key) as client:
        answer = await client.get("/v1/models")
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == "This API key has expired."
    assert answer.headers["x-should-retry"] == "false"
    assert answer.headers["x-request-id"].startswith("req_")


async def test_a_key_cannot_be_made_already_expired(served: Served) -> None:
    tenant = await served.tenant()
    async with served.admin() as admin:
        answer = await admin.post(
            "/admin/v1/keys", json={"tenant": tenant, "expires_at": time.time() - 1}
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "expires_at"


async def test_a_revoked_key_is_refused_within_the_cache_ttl(served: Served) -> None:
    tenant = await served.tenant()
    key, key_id = await served.key(tenant)
    assert await status_of(served, key) == 200
    async with served.admin() as admin:
        assert (await admin.delete(f"/admin/v1/keys/{key_id}")).status_code == 200
    started = time.monotonic()
    await eventually(lambda: refused(served, key), timeout_s=5, what="the revoked key refused")
    assert time.monotonic() - started < 2


async def test_a_deleted_tenant_is_cut_off(served: Served) -> None:
    """Before: its keys kept working, without limits. Now they are revoked with it."""
    tenant = await served.tenant(limits={"rpm": 10})
    key, key_id = await served.key(tenant)
    assert await status_of(served, key) == 200
    async with served.admin() as admin:
        deleted = await admin.delete(f"/admin/v1/tenants/{tenant}")
        assert deleted.json() == {
            "object": "tenant",
            "name": tenant,
            "deleted": True,
            "keys_revoked": 1,
        }
        record = (await admin.get(f"/admin/v1/keys/{key_id}")).json()
    assert record["revoked_at"] is not None
    await eventually(lambda: refused(served, key), timeout_s=5, what="the key refused")


async def test_a_key_whose_tenant_vanished_is_refused(served: Served, settings: Settings) -> None:
    """Even a key left behind (the tenant removed from RedisClient by hand) is never served without
    its tenant, so never without its limits."""
    from aibroker.stores.control_view import tenant_key
    from tests.services import redis_client

    tenant = await served.tenant()
    key, _ = await served.key(tenant)
    assert settings.redis.url is not None
    async with redis_client(settings.redis.url) as redis:
        await redis.delete(tenant_key(tenant))
    await eventually(lambda: refused(served, key), timeout_s=5, what="the key refused")
    async with served.client(key) as client:
        answer = await client.get("/v1/models")
    assert "no longer exists" in answer.json()["error"]["message"]


async def test_an_inactive_tenant_is_refused_until_reactivated(served: Served) -> None:
    tenant = await served.tenant()
    key, _ = await served.key(tenant)
    async with served.admin() as admin:
        await admin.put(f"/admin/v1/tenants/{tenant}", json={"active": False})
        await eventually(lambda: refused(served, key), timeout_s=5, what="inactive: refused")
        await admin.put(f"/admin/v1/tenants/{tenant}", json={"active": True})

    async def accepted() -> bool:
        return await status_of(served, key) == 200

    await eventually(accepted, timeout_s=5, what="active again: accepted")


async def test_rotation_keeps_the_old_key_for_its_grace_period(served: Served) -> None:
    tenant = await served.tenant(models=["mock/*"])
    old, old_id = await served.key(
        tenant, name="backend", environment="test", models=["mock/a*"], limits={"rpm": 5}
    )
    async with served.admin() as admin:
        rotated = await admin.post(f"/admin/v1/keys/{old_id}/rotate", json={"grace_s": 1.5})
        assert rotated.status_code == 201
        new = rotated.json()
        assert new["key"] != old
        assert new["rotated_from"] == old_id
        assert (new["name"], new["environment"], new["models"]) == ("backend", "test", ["mock/a*"])
        assert new["limits"] == {"rpm": 5}
        before = (await admin.get(f"/admin/v1/keys/{old_id}")).json()
        assert before["replaced_by"] == new["key_id"]
        assert before["expires_at"] == pytest.approx(time.time() + 1.5, abs=1)
    assert await status_of(served, old) == 200  # within its grace
    assert await status_of(served, new["key"]) == 200
    await asyncio.sleep(1.6)
    assert await status_of(served, old) == 401
    assert await status_of(served, new["key"]) == 200


async def test_a_key_uses_only_its_own_models(served: Served) -> None:
    tenant = await served.tenant(models=["mock/*"])
    key, _ = await served.key(tenant, models=["mock/allowed-*"])
    async with served.client(key) as client:
        body = {"messages": HELLO}
        async_ = {"Prefer": "respond-async"}
        ok = await client.post(
            "/v1/chat/completions", json={**body, "model": "mock/allowed-1"}, headers=async_
        )
        assert ok.status_code == 202
        other = await client.post(
            "/v1/chat/completions", json={**body, "model": "mock/other"}, headers=async_
        )
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "model_not_allowed"
    async with served.admin() as admin:
        wider = await admin.post("/admin/v1/keys", json={"tenant": tenant, "models": ["gpt-4o"]})
    assert wider.status_code == 400  # never wider than its tenant's
    assert wider.json()["error"]["param"] == "models"


async def test_a_key_for_a_tenant_that_does_not_exist_is_refused(served: Served) -> None:
    async with served.admin() as admin:
        answer = await admin.post("/admin/v1/keys", json={"tenant": "nobody-here"})
    assert answer.status_code == 404
