"""`DELETE /admin/v1/cache` (every entry, a tenant's, a model alias's) and
`GET /admin/v1/cache/stats`: the exact response cache, under RBAC (`cache:write`,
`cache:read`; a tenant admin on its own tenant only), every deletion audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from aibroker.identity import Permission, scope_of
from aibroker.stores.response_cache import RedisResponseCache
from ingress.auth import Admin, authorize
from ingress.state import services
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1", tags=["admin"])

Tenant = Annotated[str | None, Query(description="Only this tenant's entries.")]
Model = Annotated[str | None, Query(description="Only this model alias's entries.")]


@router.delete("/cache")
async def clear_cache(
    request: Request, caller: Admin, tenant: Tenant = None, model: Model = None
) -> Response:
    """Delete cached answers: all of them (admin), a tenant's, or an alias's (of one tenant or
    of all). The requests that follow are answered by a provider and stored again."""
    scope = scope_of(caller, tenant)
    await authorize(request, caller, Permission.CACHE_WRITE, scope)
    svc = services(request)
    deleted = await RedisResponseCache(svc.redis).clear(scope, model)
    await svc.auditor.record(
        request,
        caller,
        "cache.clear",
        tenant=scope,
        target=model,
        detail={"deleted": deleted},
    )
    return json_response(
        {"object": "cache.cleared", "tenant": scope, "model": model, "deleted": deleted}
    )


@router.get("/cache/stats")
async def cache_stats(request: Request, caller: Admin, tenant: Tenant = None) -> Response:
    """Hits, misses, bypasses and dollars saved by tenant and alias since the counts began,
    and the entries stored now (all tenants' entries for an admin; a tenant's rows only when
    one is named or the caller is its admin)."""
    scope = scope_of(caller, tenant)
    await authorize(request, caller, Permission.CACHE_READ, scope)
    stats = await RedisResponseCache(services(request).redis).stats(scope)
    return json_response({"object": "cache.stats", "tenant": scope, **stats})
