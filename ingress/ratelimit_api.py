"""Admin views of quota now, per tenant and per key: the requests- and tokens-per-minute
buckets, concurrency in flight and the month's spend, each beside its limit. DELETE refills
the buckets and frees the concurrency slots (the spend stays: it is the month's bill)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from aibroker.errors import NotFound
from aibroker.identity import Caller, Permission
from aibroker.limits import Limits
from aibroker.stores.keyspace import quota_scope
from ingress.auth import Admin, authorize
from ingress.state import Services, services
from ingress.tenants_api import TenantName
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1/ratelimit", tags=["admin"])


async def _view(svc: Services, scope: str, limits: Limits) -> dict[str, Any]:
    now = time.time()
    buckets = await svc.quota.buckets(scope, limits, now)
    budget = limits.budget_usd_month
    return {
        "object": "ratelimit",
        "buckets": {name: vars(b) for name, b in buckets.items()},
        "concurrency": {
            "limit": limits.concurrency,
            "in_flight": await svc.quota.in_flight(scope, now),
        },
        "spend_usd_month": {
            "limit": None if budget is None else str(budget),
            "spent": str(await svc.quota.spend(scope, now)),
        },
    }


async def _tenant_limits(svc: Services, name: str) -> Limits:
    tenant = await svc.tenant_store.get(name)
    if tenant is None:
        raise NotFound(f"No tenant '{name}'.", param="tenant")
    return tenant.limits


async def _key_limits(
    request: Request, caller: Caller, key_id: str, permission: Permission
) -> tuple[str | None, Limits]:
    record = await services(request).key_store.record(key_id)
    if record is None:
        raise NotFound(f"No key with id '{key_id}'.", param="key_id")
    await authorize(request, caller, permission, record.tenant)
    return record.tenant, record.limits


@router.get("/keys/{key_id}")
async def key_view(key_id: str, request: Request, caller: Admin) -> Response:
    tenant, limits = await _key_limits(request, caller, key_id, Permission.RATELIMIT_READ)
    view = await _view(services(request), quota_scope(tenant or "", key_id), limits)
    return json_response(view | {"tenant": tenant, "key_id": key_id})


@router.delete("/keys/{key_id}")
async def key_reset(key_id: str, request: Request, caller: Admin) -> Response:
    tenant, limits = await _key_limits(request, caller, key_id, Permission.RATELIMIT_WRITE)
    svc = services(request)
    scope = quota_scope(tenant or "", key_id)
    await svc.quota.reset(scope)
    await svc.auditor.record(request, caller, "ratelimit.reset", tenant=tenant, target=key_id)
    return json_response(await _view(svc, scope, limits) | {"key_id": key_id})


@router.get("/{tenant}")
async def tenant_view(tenant: TenantName, request: Request, caller: Admin) -> Response:
    await authorize(request, caller, Permission.RATELIMIT_READ, tenant)
    svc = services(request)
    view = await _view(svc, quota_scope(tenant), await _tenant_limits(svc, tenant))
    return json_response(view | {"tenant": tenant})


@router.delete("/{tenant}")
async def tenant_reset(tenant: TenantName, request: Request, caller: Admin) -> Response:
    await authorize(request, caller, Permission.RATELIMIT_WRITE, tenant)
    svc = services(request)
    limits = await _tenant_limits(svc, tenant)
    await svc.quota.reset(quota_scope(tenant))
    await svc.auditor.record(request, caller, "ratelimit.reset", tenant=tenant, target=tenant)
    return json_response(await _view(svc, quota_scope(tenant), limits) | {"tenant": tenant})
