"""The admin API: API keys created, listed, revoked; its own key."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from aibroker.kafka.clients import make_producer
from loadtest.stack import Stack
from tests.waiting import eventually
from topics.catalog import TopicNames

pytestmark = [pytest.mark.e2e]


async def test_a_key_is_shown_once_listed_by_prefix_and_revoked(stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        assert (await client.put("/admin/v1/tenants/tenant-x", json={}, headers=admin)).is_success
        created = await client.post("/admin/v1/keys", json={"tenant": "tenant-x"}, headers=admin)
        assert created.status_code == 201
        key, key_id = created.json()["key"], created.json()["key_id"]
        assert key.startswith("aib_")
        mine = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/v1/models", headers=mine)).status_code == 200

        listed = (
            await client.get("/admin/v1/keys", params={"tenant": "tenant-x"}, headers=admin)
        ).json()["data"]
        assert [(k["key_id"], k["prefix"], k["revoked_at"]) for k in listed] == [
            (key_id, key[:10], None)
        ]
        assert key not in str(listed)

        revoked = await client.delete(f"/admin/v1/keys/{key_id}", headers=admin)
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        started = time.monotonic()

        async def refused() -> bool:
            return (await client.get("/v1/models", headers=mine)).status_code == 401

        await eventually(refused, timeout_s=10, what="the revoked key refused")
        assert time.monotonic() - started < 5  # the cache holds a key 0.5 s in this stack


async def test_the_admin_api_wants_an_admin(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        anonymous = await client.post("/admin/v1/keys", json={"tenant": "t"})
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "invalid_api_key"
        tenant_key = {"Authorization": f"Bearer {stack.api_key}"}
        no_role = await client.post("/admin/v1/keys", json={"tenant": "t"}, headers=tenant_key)
        assert no_role.status_code == 403
        assert no_role.json()["error"]["code"] == "permission_denied"
        unknown = await client.delete(
            "/admin/v1/keys/key_nope", headers={"Authorization": f"Bearer {stack.admin_key}"}
        )
        assert unknown.status_code == 404


async def test_dead_letters_are_listed_and_replayed(stack: Stack, http: httpx.AsyncClient) -> None:
    """A request that exhausted its retries is in the DLQ; replayed once the provider is back,
    it runs again as a new request. A poison record goes back where it came from."""
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    names = TopicNames(stack.prefix)
    async with httpx.AsyncClient(base_url=stack.mock_url) as mock:
        await mock.post("/_control", json={"error_rate": 1.0, "error_status": 503})
        try:
            failed = await http.post(
                "/v1/chat/completions",
                json={"model": "mock/echo", "messages": [{"role": "user", "content": "x"}]},
            )
        finally:
            await mock.post("/_control", json={})
    assert failed.status_code == 502
    first_id = failed.headers["x-request-id"]
    producer = make_producer(stack.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(names.requests_interactive, b"\xffnot json", key=b"poison")
    finally:
        await producer.stop()

    async def letters() -> list[dict[str, Any]] | None:
        found = await http.get("/admin/v1/dlq", headers=admin)
        data: list[dict[str, Any]] = found.json()["data"]
        return data if {d["kind"] for d in data} >= {"exhausted", "poison"} else None

    listed = await eventually(letters, what="both dead letters listed")
    assert listed is not None
    exhausted = next(d for d in listed if d["kind"] == "exhausted")
    assert exhausted["request"]["id"] == first_id
    assert "retries exhausted after 4 attempts" in exhausted["reason"]
    poison = next(d for d in listed if d["kind"] == "poison")
    assert poison["source"].startswith(names.requests_interactive + ":")

    replayed = await http.post(f"/admin/v1/dlq/{exhausted['offset']}/replay", headers=admin)
    assert replayed.status_code == 200
    new_id = replayed.json()["request_id"]
    assert new_id != first_id
    done = (await http.get(f"/v1/requests/{new_id}", params={"wait": 20})).json()
    assert done["status"] == "succeeded"
    first = (await http.get(f"/v1/requests/{first_id}")).json()
    assert first["status"] == "failed"  # its first result stands

    again = await http.post(f"/admin/v1/dlq/{poison['offset']}/replay", headers=admin)
    assert again.json()["topic"] == names.requests_interactive
    relisted = await eventually(
        lambda: _poison_count(http, admin, 2), what="the replayed poison dead-lettered again"
    )
    assert relisted
    missing = await http.post("/admin/v1/dlq/999999/replay", headers=admin)
    assert missing.status_code == 404


async def _poison_count(http: httpx.AsyncClient, admin: dict[str, str], n: int) -> bool:
    data: list[dict[str, Any]] = (await http.get("/admin/v1/dlq", headers=admin)).json()["data"]
    return sum(1 for d in data if d["kind"] == "poison") >= n
