"""`GET /admin/v1/responses`: background Responses in flight (queued or running), newest
first, for the console and for curl: each with its tenant, model, status and age. Read under
`usage:read`, all tenants' for an admin, one tenant's for its admin or when named."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from aibroker.identity import Permission, scope_of
from aibroker.ids import created_at
from aibroker.stores.responses import RedisResponseStore
from aibroker.stores.results import RedisRequestStore
from ingress.auth import Admin, authorize
from ingress.state import services
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1", tags=["admin"])

SCAN = 500
"""How many of the newest listed responses one call reads: those in flight are the newest."""

Tenant = Annotated[str | None, Query(description="Only this tenant's responses.")]
Limit = Annotated[int, Query(ge=1, le=200, description="At most this many.")]


@router.get("/responses")
async def background_in_flight(
    request: Request, caller: Admin, tenant: Tenant = None, limit: Limit = 50
) -> Response:
    scope = scope_of(caller, tenant)
    await authorize(request, caller, Permission.USAGE_READ, scope)
    svc = services(request)
    store = RedisResponseStore(svc.redis, svc.settings.responses)
    states = RedisRequestStore(svc.redis, svc.settings.redis.ttl_s)
    data, ended = [], []
    for response_id in await store.background(SCAN):
        state = await states.get(response_id)
        if state is None or state.status.terminal:
            ended.append(response_id)
            continue
        if scope is not None and state.tenant != scope:
            continue
        stored = await store.get(response_id)
        data.append(
            {
                "id": response_id,
                "tenant": state.tenant,
                "model": stored.body.get("model") if stored else None,
                "status": "in_progress" if state.status.value == "running" else "queued",
                "created_at": created_at(response_id),
            }
        )
        if len(data) == limit:
            break
    await store.settled(ended)
    return json_response({"object": "list", "tenant": scope, "data": data})
