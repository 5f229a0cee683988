"""Ingress with Kafka up and Redis unreachable: calls that need Redis answer 503 +
Retry-After as an OpenAI-style error, never a 500."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import uvicorn

from aibroker.devstack.embedded import free_port
from aibroker.settings import IngressSettings, RedisSettings, Settings
from ingress.app import create_app
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_redis_down_is_a_clear_503(settings: Settings) -> None:
    port = free_port()
    dead_redis = settings.model_copy(
        update={
            "redis": RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0"),
            "ingress": IngressSettings(port=port),
        }
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(dead_redis), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _started(server), what="ingress started")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for answer in (
                await client.get("/v1/requests/req_x", headers={"Authorization": "Bearer aib_k"}),
                await client.post(
                    "/v1/chat/completions",
                    headers={"Authorization": "Bearer aib_k"},
                    json={"model": "m", "messages": [{"role": "user"}]},
                ),
            ):
                assert answer.status_code == 503
                assert answer.headers["retry-after"] == "2"
                assert answer.json()["error"]["code"] == "service_unavailable"
            ready = await client.get("/health/ready")  # it answers: it stays in its Service
            assert ready.status_code == 200
            assert ready.json() == {
                "status": "degraded",
                "checks": {"kafka": "ok", "redis": "down"},
            }
    finally:
        server.should_exit = True
        await serving


async def _started(server: uvicorn.Server) -> bool:
    return server.started
