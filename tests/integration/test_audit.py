"""The audit log: admin changes with actor, role, action, target, outcome, source and request
id; refused authentications counted per key prefix over a window; permissions denied; no
secret ever written. Read back through `GET /admin/v1/audit`, filtered and paged."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aibroker.settings import Settings, WebhookSettings
from tests.ingress_app import Served, serving
from tests.waiting import eventually

pytestmark = [pytest.mark.integration]


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    local_hooks = WebhookSettings(allow_http=True, allow=["127.0.0.0/8"])
    async with serving(settings, webhooks=local_hooks) as running:
        yield running


async def entries(served: Served, **params: Any) -> list[dict[str, Any]]:
    async with served.admin() as admin:
        answer = await admin.get("/admin/v1/audit", params=params)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def test_admin_changes_are_audited_without_secrets(served: Served) -> None:
    tenant = await served.tenant(webhooks=[{"url": "http://127.0.0.1:9/hook"}])
    async with served.admin() as admin:
        made = await admin.post("/admin/v1/keys", json={"tenant": tenant, "name": "ci"})
        key, key_id = made.json()["key"], made.json()["key_id"]
        await admin.post(f"/admin/v1/keys/{key_id}/rotate", json={"grace_s": 60})
        revoked = await admin.delete(f"/admin/v1/keys/{key_id}")
        await admin.delete(f"/admin/v1/ratelimit/{tenant}")
        await admin.delete(f"/admin/v1/tenants/{tenant}")
        secret = (await admin.get("/admin/v1/tenants")).text  # not needed: never audited
    found = await entries(served, tenant=tenant)
    assert [e["action"] for e in found] == [
        "tenant.put",
        "key.create",
        "key.rotate",
        "key.revoke",
        "ratelimit.reset",
        "tenant.delete",
    ]
    assert {(e["actor"], e["role"], e["outcome"], e["source"]) for e in found} == {
        ("bootstrap", "admin", "ok", "127.0.0.1")
    }
    revoke = found[3]
    assert (revoke["target"], revoke["request_id"]) == (key_id, revoked.headers["x-request-id"])
    assert revoke["detail"]["prefix"] == key[:10]
    assert found[0]["detail"]["webhook_secrets"] == 1
    dump = str(found)
    assert key not in dump
    assert "whsec_" not in dump
    assert secret  # the listing itself is a read: not audited
    assert await entries(served, tenant=tenant, action="key") == found[1:4]


async def test_refused_authentications_are_counted_per_prefix(served: Served) -> None:
    guessed = "aib_guessWrong_" + str(time.time_ns())
    async with served.client(guessed) as client:
        for _ in range(5):
            assert (await client.get("/v1/models")).status_code == 401

    async def counted() -> list[dict[str, Any]]:
        return [
            e for e in await entries(served, action="auth.refused") if e["actor"] == guessed[:10]
        ]

    found = await eventually(counted, timeout_s=10, what="the refusals audited")
    assert sum(e["detail"]["count"] for e in found) == 5
    assert found[0]["detail"]["reason"] == "unknown_key"
    assert guessed not in str(found)


async def test_denied_permissions_are_audited(served: Served) -> None:
    own, other = await served.tenant(), await served.tenant()
    tenant_admin, _ = await served.key(own, roles=["tenant_admin"])
    async with served.client(tenant_admin) as client:
        assert (await client.delete(f"/admin/v1/tenants/{other}")).status_code == 403
    found = await entries(served, tenant=other, action="tenants:write")
    assert [(e["outcome"], e["role"], e["target"]) for e in found] == [
        ("denied", "tenant_admin", f"/admin/v1/tenants/{other}")
    ]


async def test_the_log_pages_and_filters_by_time(served: Served) -> None:
    tenant = await served.tenant()
    for _ in range(4):
        await served.key(tenant)
    async with served.admin() as admin:
        first = (await admin.get("/admin/v1/audit", params={"tenant": tenant, "limit": 2})).json()
        rest = (
            await admin.get(
                "/admin/v1/audit",
                params={"tenant": tenant, "limit": 10, "after": first["next_after"]},
            )
        ).json()
    assert [e["action"] for e in first["data"]] == ["tenant.put", "key.create"]
    assert first["has_more"] is True
    assert [e["action"] for e in rest["data"]] == ["key.create"] * 3
    assert rest["has_more"] is False
    assert await entries(served, tenant=tenant, **{"from": time.time() + 3600}) == []
    assert await entries(served, tenant=tenant, to=time.time() - 3600) == []
