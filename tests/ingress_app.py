"""Ingress served in the test's own process (uvicorn on a free port) against the suite's real
Kafka and Redis, with the shared topics applied: for tests of the HTTP surface that need no
dispatcher or pool behind it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from aibroker.devstack.embedded import free_port
from aibroker.settings import Settings
from ingress.app import create_app
from tests.waiting import eventually
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue


@dataclass
class Served:
    url: str
    admin_key: str
    settings: Settings

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    def admin(self) -> httpx.AsyncClient:
        return self.client(self.admin_key)

    async def tenant(self, **body: Any) -> str:
        """A new tenant (a unique name), made by the bootstrap admin."""
        name = f"t-{uuid.uuid4().hex[:8]}"
        async with self.admin() as admin:
            answer = await admin.put(f"/admin/v1/tenants/{name}", json=body)
            assert answer.status_code == 200, answer.text
        return name

    async def key(self, tenant: str | None, **spec: Any) -> tuple[str, str]:
        """A new key of `tenant` (key, key id), made by the bootstrap admin."""
        async with self.admin() as admin:
            answer = await admin.post("/admin/v1/keys", json={"tenant": tenant, **spec})
            assert answer.status_code == 201, answer.text
        return answer.json()["key"], answer.json()["key_id"]


@contextlib.asynccontextmanager
async def serving(settings: Settings, **updates: Any) -> AsyncIterator[Served]:
    """Ingress on `settings` with an admin key, a short key cache and refusal window."""
    port = free_port()
    admin_key = f"aib_admin_{uuid.uuid4().hex}"
    configured = settings.model_copy(
        update={
            "ingress": settings.ingress.model_copy(update={"port": port, "key_cache_ttl_s": 0.3}),
            "admin": settings.admin.model_copy(update={"api_key": admin_key}),
            "auth": settings.auth.model_copy(update={"refusals_window_s": 0.3}),
            **updates,
        }
    )
    names = TopicNames(settings.kafka.topic_prefix)
    await apply_topics(settings.kafka, catalogue(names, [], partitions=1))
    app = create_app(configured)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await eventually(started, what="ingress started")
        yield Served(f"http://127.0.0.1:{port}", admin_key, configured)
    finally:
        server.should_exit = True
        await task
