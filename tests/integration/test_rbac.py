"""Roles on the admin API, route by route: a tenant admin reaches its own tenant's keys,
webhooks, DLQ entries and audit entries and nothing of another tenant's; a viewer reads and
never writes; a tenant's plain key is no admin. Each refusal is a 403 `permission_denied`."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from aibroker.kafka.clients import running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.settings import Settings
from aibroker.stores.webhook_log import RedisWebhookLog
from schemas.envelopes import Delivery, Kind, Request, WebhookEvent
from tests.ingress_app import Served, serving
from tests.services import redis_client
from topics.catalog import TopicNames

pytestmark = [pytest.mark.integration]


@dataclass
class World:
    served: Served
    own: str
    """The tenant admin's tenant."""
    other: str
    other_key_id: str
    other_letter: int
    """Offset of a dead letter of the other tenant."""
    other_request: str
    """A request of the other tenant with webhook attempts logged."""
    other_webhook: str
    tenant_admin: str
    viewer: str
    plain: str
    """A key of the tenant admin's tenant with no role."""


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    async with serving(settings) as served:
        own, other = await served.tenant(limits={"rpm": 100}), await served.tenant()
        tenant_admin, _ = await served.key(own, roles=["tenant_admin"])
        viewer, _ = await served.key(None, roles=["viewer"])
        plain, _ = await served.key(own)
        _, other_key_id = await served.key(other)
        names = TopicNames(settings.kafka.topic_prefix)
        request = Request(
            id=f"req_{uuid.uuid4().hex}",
            tenant=other,
            kind=Kind.CHAT,
            model="m",
            body={},
            created_at=time.time(),
        )
        async with running_producer(settings.kafka) as producer:
            await Publisher(producer, names).dead_letter(request, "boom", kind="exhausted")
        delivery = Delivery(
            id=f"msg_{uuid.uuid4().hex}",
            request_id=request.id,
            tenant=other,
            url="https://example.com/hook",
            event=WebhookEvent.REQUEST_COMPLETED,
            payload={},
            created_at=time.time(),
        )
        assert settings.redis.url is not None
        async with redis_client(settings.redis.url) as redis:
            log = RedisWebhookLog(redis, 600)
            await log.keep(delivery)
            await log.attempted(request.id, {"webhook_id": delivery.id, "tenant": other})
        yield World(
            served,
            own,
            other,
            other_key_id,
            0,
            request.id,
            delivery.id,
            tenant_admin,
            viewer,
            plain,
        )


def routes(w: World) -> list[tuple[str, str, dict[str, object] | None]]:
    """Every admin route, aimed at the other tenant's objects."""
    return [
        ("POST", "/admin/v1/keys", {"tenant": w.other}),
        ("GET", f"/admin/v1/keys?tenant={w.other}", None),
        ("GET", f"/admin/v1/keys/{w.other_key_id}", None),
        ("DELETE", f"/admin/v1/keys/{w.other_key_id}", None),
        ("POST", f"/admin/v1/keys/{w.other_key_id}/rotate", {}),
        ("PUT", f"/admin/v1/tenants/{w.other}", {}),
        ("PUT", f"/admin/v1/tenants/{w.other}/webhooks", {}),
        ("GET", f"/admin/v1/tenants/{w.other}", None),
        ("DELETE", f"/admin/v1/tenants/{w.other}", None),
        ("GET", f"/admin/v1/dlq?tenant={w.other}", None),
        ("POST", f"/admin/v1/dlq/{w.other_letter}/replay", None),
        ("GET", f"/admin/v1/requests/{w.other_request}/webhooks", None),
        ("POST", f"/admin/v1/webhooks/{w.other_webhook}/redeliver", None),
        ("GET", f"/admin/v1/audit?tenant={w.other}", None),
        ("GET", f"/admin/v1/usage?tenant={w.other}", None),
        ("GET", f"/admin/v1/ratelimit/{w.other}", None),
        ("DELETE", f"/admin/v1/ratelimit/{w.other}", None),
        ("GET", f"/admin/v1/ratelimit/keys/{w.other_key_id}", None),
        ("GET", "/health/detailed", None),
    ]


async def test_a_tenant_admin_reaches_nothing_of_another_tenant(world: World) -> None:
    async with world.served.client(world.tenant_admin) as client:
        for method, path, body in routes(world):
            answer = await client.request(method, path, json=body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "permission_denied"
            assert answer.headers["x-should-retry"] == "false"
    async with world.served.admin() as admin:  # nothing changed
        key = (await admin.get(f"/admin/v1/keys/{world.other_key_id}")).json()
        assert key["revoked_at"] is None
        assert (await admin.get(f"/admin/v1/tenants/{world.other}")).status_code == 200


async def test_a_tenant_admin_manages_its_own_tenant(world: World) -> None:
    own = world.own
    async with world.served.client(world.tenant_admin) as client:
        made = await client.post("/admin/v1/keys", json={"tenant": own, "limits": {"rpm": 50}})
        assert made.status_code == 201
        listed = (await client.get("/admin/v1/keys")).json()["data"]  # its tenant's by default
        assert {k["tenant"] for k in listed} == {own}
        assert (await client.get(f"/admin/v1/tenants/{own}")).status_code == 200
        assert [t["name"] for t in (await client.get("/admin/v1/tenants")).json()["data"]] == [own]
        hooks = await client.put(f"/admin/v1/tenants/{own}/webhooks", json={"webhooks": []})
        assert hooks.status_code == 200
        assert (await client.get("/admin/v1/dlq")).status_code == 200
        rotated = await client.post(f"/admin/v1/keys/{made.json()['key_id']}/rotate", json={})
        assert rotated.status_code == 201
        # Only an admin changes the tenant itself, or grants beyond it.
        assert (await client.put(f"/admin/v1/tenants/{own}", json={})).status_code == 403
        above = await client.post("/admin/v1/keys", json={"tenant": own, "limits": {"rpm": 500}})
        assert above.status_code == 403
        for role in ("admin", "viewer"):
            granted = await client.post("/admin/v1/keys", json={"tenant": own, "roles": [role]})
            assert granted.status_code == 403, role


async def test_a_viewer_reads_everything_and_changes_nothing(world: World) -> None:
    async with world.served.client(world.viewer) as client:
        for method, path, body in routes(world):
            answer = await client.request(method, path, json=body)
            if method == "GET":
                assert answer.status_code == 200, (path, answer.text)
            else:
                assert answer.status_code == 403, (method, path, answer.text)
        tenant = (await client.get(f"/admin/v1/tenants/{world.other}")).json()
        assert all(s.endswith("…") for s in tenant["webhook_secrets"])


async def test_a_plain_key_is_no_admin_and_an_unknown_one_no_caller(world: World) -> None:
    async with world.served.client(world.plain) as client:
        answer = await client.get("/admin/v1/tenants")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "permission_denied"
    async with world.served.client("aib_not_a_key") as client:
        answer = await client.get("/admin/v1/tenants")
    assert answer.status_code == 401
