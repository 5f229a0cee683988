"""Liveness, readiness, and the admin-only detailed health.

Readiness means "this process can answer": while Kafka or Redis is down, ingress still
answers, with the designed 503 + Retry-After (or, for async work, a 202 from Kafka alone), so
failing readiness would only swap those answers for connection errors when every pod leaves
its Service at once. The checks are in the body, for people. Metrics are served on the
metrics port only (`AIBROKER_METRICS_PORT`), never on the public one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from aibroker.identity import Permission
from aibroker.kafka.lag import lag_reader
from aibroker.stores.breaker import BreakerPolicy, RedisBreakers
from ingress.auth import Admin, authorize
from ingress.state import Services, services
from ingress.views import json_response

router = APIRouter(tags=["operations"])
PROBE_TIMEOUT_S = 2.0


@router.get("/health/live")
async def live() -> Response:
    """The event loop answers."""
    return json_response({"status": "ok"})


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    """200 once the process serves; `checks` says whether Kafka and Redis answer now."""
    checks = await _reachability(services(request))
    degraded = not all(v == "ok" for v in checks.values())
    return json_response({"status": "degraded" if degraded else "ok", "checks": checks})


async def _reachability(svc: Services) -> dict[str, str]:
    kafka, redis = await asyncio.gather(_check(svc.publisher.reachable()), _check(svc.redis.ping()))
    return {"kafka": "ok" if kafka else "down", "redis": "ok" if redis else "down"}


async def _check(probe: Awaitable[object]) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await probe
    except Exception:
        return False
    return True


@router.get("/health/detailed")
async def detailed(request: Request, caller: Admin) -> Response:
    """Kafka and Redis reachability, each target's circuit breaker, and each pool's backlog
    (records on its dispatch topic its group has not finished). Admin only: it shows the
    deployment's topology."""
    await authorize(request, caller, Permission.HEALTH_READ, None)
    svc = services(request)
    checks = await _reachability(svc)
    doc: dict[str, Any] = {"object": "health", "checks": checks}
    if checks["redis"] == "ok":
        breakers = RedisBreakers(
            svc.redis, BreakerPolicy.of(svc.settings.breaker), svc.settings.kafka.topic_prefix
        )
        states = await breakers.states(time.time())
        doc["breakers"] = {target: state.value for target, state in sorted(states.items())}
    if checks["kafka"] == "ok":
        doc["pools"] = await _pools(svc)
    return json_response(doc)


async def _pools(svc: Services) -> dict[str, Any]:
    pools: dict[str, Any] = {}
    async with lag_reader(svc.settings.kafka) as lags:
        for key, topic, group in svc.routes.pools(svc.names):
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    pools[key] = {
                        "topic": topic,
                        "group": group,
                        "lag": await lags.lag(topic, group),
                    }
            except Exception as exc:  # one pool's unreadable lag is shown, not fatal
                pools[key] = {"topic": topic, "group": group, "error": type(exc).__name__}
    return pools
