"""Liveness, readiness (Kafka and Redis reachable) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from ingress.state import services
from ingress.views import json_response

router = APIRouter(tags=["operations"])


@router.get("/health/live")
async def live() -> Response:
    return json_response({"status": "ok"})


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    svc = services(request)
    checks = {
        "kafka": await _check(svc.publisher.reachable()),
        "redis": await _check(svc.redis.ping()),
    }
    ok = all(checks.values())
    return json_response(
        {
            "status": "ok" if ok else "unavailable",
            "checks": {k: "ok" if v else "down" for k, v in checks.items()},
        },
        200 if ok else 503,
    )


async def _check(probe: Awaitable[object]) -> bool:
    try:
        async with asyncio.timeout(2.0):
            await probe
    except Exception:
        return False
    return True


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
