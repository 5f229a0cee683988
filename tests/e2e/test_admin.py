"""The admin API: API keys created, listed, revoked; its own key."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from loadtest.stack import Stack

pytestmark = [pytest.mark.e2e]


async def test_a_key_is_shown_once_listed_by_prefix_and_revoked(stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
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
        await asyncio.sleep(0.7)  # the ingress key cache holds entries 0.5 s in this stack
        refused = await client.get("/v1/models", headers=mine)
        assert refused.status_code == 401


async def test_the_admin_api_wants_its_own_key(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        for headers in ({}, {"Authorization": f"Bearer {stack.api_key}"}):
            answer = await client.post("/admin/v1/keys", json={"tenant": "t"}, headers=headers)
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "invalid_api_key"
        unknown = await client.delete(
            "/admin/v1/keys/key_nope", headers={"Authorization": f"Bearer {stack.admin_key}"}
        )
        assert unknown.status_code == 404
