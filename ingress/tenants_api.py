"""Admin routes of tenants: limits, model list, `active`, webhook endpoints and secrets.
Admins change tenants; a tenant admin reads its own and sets its own webhooks; viewers read.
Deleting a tenant cuts it off: its keys are revoked and its tokens refused."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from aibroker.errors import InvalidRequest, NotFound
from aibroker.identity import Caller, Permission, Role
from aibroker.limits import Limits
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.tenants import TENANT_NAME, Endpoint, Tenant, new_webhook_secret
from ingress.auth import Admin, authorize
from ingress.state import Services, services
from ingress.views import json_response
from ingress.webhook_targets import check_webhook_url

router = APIRouter(prefix="/admin/v1", tags=["admin"])

MIN_SECRET_BYTES = 16
"""The shortest signing key accepted (new ones are 24 bytes)."""

TenantName = Annotated[str, Path(pattern=TENANT_NAME)]
"""A tenant name in a path: letters, digits, `.`, `_`, `-` (anything else is a clear 400)."""


class Webhooks(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhooks: list[Endpoint] = Field(default_factory=list)
    webhook_secrets: list[str] = Field(
        default_factory=list,
        description="`whsec_` secrets, newest first; one is made when webhooks need one.",
    )


class TenantBody(Webhooks):
    active: bool = True
    limits: Limits = Field(default_factory=Limits)
    models: list[str] = Field(default_factory=list)
    batch_service_tier: Literal["flex"] | None = None


def tenant_document(tenant: Tenant, caller: Caller) -> dict[str, Any]:
    """The tenant; its webhook secrets only for those who may change its webhooks."""
    doc = {"object": "tenant", **tenant.model_dump(mode="json", exclude_none=True)}
    if Role.ADMIN not in caller.roles and not (
        Role.TENANT_ADMIN in caller.roles and caller.tenant == tenant.name
    ):
        doc["webhook_secrets"] = [s[:10] + "…" for s in tenant.webhook_secrets]
    return doc


async def _webhooks(svc: Services, body: Webhooks) -> list[str]:
    """The body's endpoints pass the SSRF guard (here and at each delivery); its secrets, or a
    new one when endpoints need one."""
    for i, endpoint in enumerate(body.webhooks):
        await check_webhook_url(endpoint.url, svc.settings.webhooks, f"webhooks[{i}].url")
    secrets = body.webhook_secrets or ([new_webhook_secret()] if body.webhooks else [])
    for secret in secrets:
        if not signing_secret(secret):
            raise InvalidRequest(
                "Webhook secrets are 'whsec_' and base64 (padded) of at least 16 bytes.",
                param="webhook_secrets",
            )
    return secrets


def signing_secret(secret: str) -> bool:
    """`whsec_` + padded base64 of a key long enough: what the `standardwebhooks` library and
    the `openai` SDK's `webhooks.unwrap` both decode to the same key (the SDK does not pad)."""
    if not secret.startswith("whsec_"):
        return False
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        return False
    return len(key) >= MIN_SECRET_BYTES


def _changes(tenant: Tenant) -> dict[str, Any]:
    """What the audit log keeps of a tenant change (secrets counted, never written)."""
    doc = tenant.model_dump(mode="json", exclude={"webhook_secrets"}, exclude_none=True)
    return doc | {"webhook_secrets": len(tenant.webhook_secrets)}


async def _tenant(svc: Services, name: str) -> Tenant:
    tenant = await svc.tenant_store.get(name)
    if tenant is None:
        raise NotFound(f"No tenant '{name}'.", param="name")
    return tenant


@router.put("/tenants/{name}")
async def put_tenant(
    name: TenantName, body: TenantBody, request: Request, caller: Admin
) -> Response:
    """Create or replace a tenant (services apply it within their cache TTLs). `active:
    false` refuses its keys and tokens (401) and its queued work, keeping its data."""
    await authorize(request, caller, Permission.TENANTS_WRITE, name)
    svc = services(request)
    secrets = await _webhooks(svc, body)
    before = await svc.tenant_store.get(name)  # its guardrails stay: they have their own route
    kept = {"guardrails": before.guardrails} if before else {}
    tenant = Tenant.model_validate(
        body.model_dump() | {"name": name, "webhook_secrets": secrets} | kept
    )
    await svc.tenant_store.put(tenant)
    await svc.auditor.record(
        request, caller, "tenant.put", tenant=name, target=name, detail=_changes(tenant)
    )
    return json_response(tenant_document(tenant, caller))


@router.put("/tenants/{name}/webhooks")
async def put_webhooks(
    name: TenantName, body: Webhooks, request: Request, caller: Admin
) -> Response:
    """Replace the tenant's webhook endpoints and secrets only (what a tenant admin may)."""
    await authorize(request, caller, Permission.WEBHOOKS_WRITE, name)
    svc = services(request)
    tenant = await _tenant(svc, name)
    tenant.webhooks, tenant.webhook_secrets = body.webhooks, await _webhooks(svc, body)
    await svc.tenant_store.put(tenant)
    await svc.auditor.record(
        request, caller, "tenant.webhooks", tenant=name, target=name, detail=_changes(tenant)
    )
    return json_response(tenant_document(tenant, caller))


@router.get("/tenants")
async def list_tenants(request: Request, caller: Admin) -> Response:
    """Every tenant (a tenant admin: its own)."""
    svc = services(request)
    if Role.ADMIN in caller.roles or Role.VIEWER in caller.roles:
        tenants = await svc.tenant_store.list()
    else:
        await authorize(request, caller, Permission.TENANTS_READ, caller.tenant)
        tenants = [await _tenant(svc, caller.tenant or "")]
    data = [tenant_document(t, caller) for t in tenants]
    return json_response({"object": "list", "data": data})


@router.get("/tenants/{name}")
async def get_tenant(name: TenantName, request: Request, caller: Admin) -> Response:
    """The tenant, with its usage now: requests in flight and this month's spend (USD)."""
    await authorize(request, caller, Permission.TENANTS_READ, name)
    svc = services(request)
    tenant = await _tenant(svc, name)
    now = time.time()
    usage = {
        "in_flight": await svc.quota.in_flight(quota_scope(name), now),
        "spend_usd_month": str(await svc.quota.spend(quota_scope(name), now)),
    }
    return json_response({**tenant_document(tenant, caller), "usage": usage})


@router.delete("/tenants/{name}")
async def delete_tenant(name: TenantName, request: Request, caller: Admin) -> Response:
    """The tenant goes, and so do its keys (revoked: 401 within the key cache's TTL); its
    tokens are refused from then on, and the dispatcher refuses its queued work."""
    await authorize(request, caller, Permission.TENANTS_WRITE, name)
    svc = services(request)
    if not await svc.tenant_store.delete(name):
        raise NotFound(f"No tenant '{name}'.", param="name")
    revoked = await svc.key_store.revoke_all(name)
    await svc.auditor.record(
        request, caller, "tenant.delete", tenant=name, target=name, detail={"keys_revoked": revoked}
    )
    return json_response(
        {"object": "tenant", "name": name, "deleted": True, "keys_revoked": revoked}
    )
