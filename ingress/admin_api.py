"""The admin API (its own bearer key, `AIBROKER_ADMIN_API_KEY`): tenants, their quota and
usage, and their API keys."""

from __future__ import annotations

import hmac
import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from aibroker.errors import AdminDisabled, AuthenticationError, InvalidRequest, NotFound
from aibroker.limits import Limits
from aibroker.stores.keys import KeyRecord
from aibroker.stores.tenants import TENANT_NAME, Endpoint, Tenant, new_webhook_secret
from ingress.state import services
from ingress.views import json_response
from ingress.webhooks import check_webhook_url

router = APIRouter(prefix="/admin/v1", tags=["admin"])


async def admin(request: Request) -> None:
    expected = services(request).settings.admin.api_key
    if not expected:
        raise AdminDisabled("The admin API is off: set AIBROKER_ADMIN_API_KEY to enable it.")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), expected):
        raise AuthenticationError("Incorrect admin key.")


Admin = Annotated[None, Depends(admin)]


class NewKey(BaseModel):
    tenant: str = Field(pattern=TENANT_NAME)
    limits: Limits = Field(default_factory=Limits)


def _key_document(record: KeyRecord, **extra: Any) -> dict[str, Any]:
    doc = {"object": "api_key", **extra, **asdict(record)}
    doc["limits"] = record.limits.model_dump(mode="json", exclude_none=True)
    return doc


@router.post("/keys", status_code=201)
async def create_key(body: NewKey, request: Request, _: Admin) -> Response:
    """A new API key for the tenant, with limits of its own if given; the key itself is in
    this answer and nowhere else."""
    store = services(request).key_store
    plaintext, info = await store.add(body.tenant, limits=body.limits)
    record = await store.record(info.key_id)
    assert record is not None
    return json_response(_key_document(record, key=plaintext), 201)


@router.get("/keys")
async def list_keys(tenant: str, request: Request, _: Admin) -> Response:
    records = await services(request).key_store.list(tenant)
    return json_response({"object": "list", "data": [_key_document(r) for r in records]})


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request, _: Admin) -> Response:
    """The key stops working within the key cache's TTL (`AIBROKER_INGRESS_KEY_CACHE_TTL_S`)."""
    record = await services(request).key_store.revoke(key_id)
    if record is None:
        raise NotFound(f"No key with id '{key_id}'.", param="key_id")
    return json_response(_key_document(record))


class TenantBody(BaseModel):
    limits: Limits = Field(default_factory=Limits)
    models: list[str] = Field(default_factory=list)
    webhooks: list[Endpoint] = Field(default_factory=list)
    webhook_secrets: list[str] = Field(
        default_factory=list,
        description="`whsec_` secrets, newest first; one is made when webhooks need one.",
    )


def _tenant_document(tenant: Tenant) -> dict[str, Any]:
    return {"object": "tenant", **tenant.model_dump(mode="json", exclude_none=True)}


TenantName = Annotated[str, Path(pattern=TENANT_NAME)]
"""A tenant name in a path: letters, digits, `.`, `_`, `-` (anything else is a clear 400)."""


@router.put("/tenants/{name}")
async def put_tenant(name: TenantName, body: TenantBody, request: Request, _: Admin) -> Response:
    """Create or replace a tenant's limits, model list, webhook endpoints and secrets
    (services apply it within `AIBROKER_QUOTA_CACHE_TTL_S`). Endpoint URLs pass the SSRF
    guard here and again at each delivery."""
    svc = services(request)
    for i, endpoint in enumerate(body.webhooks):
        await check_webhook_url(endpoint.url, svc.settings.webhooks, f"webhooks[{i}].url")
    secrets = body.webhook_secrets or ([new_webhook_secret()] if body.webhooks else [])
    for secret in secrets:
        if not secret.startswith("whsec_"):
            raise InvalidRequest("Webhook secrets start with 'whsec_'.", param="webhook_secrets")
    tenant = Tenant.model_validate(body.model_dump() | {"name": name, "webhook_secrets": secrets})
    await svc.tenant_store.put(tenant)
    return json_response(_tenant_document(tenant))


@router.get("/tenants")
async def list_tenants(request: Request, _: Admin) -> Response:
    tenants = await services(request).tenant_store.list()
    return json_response({"object": "list", "data": [_tenant_document(t) for t in tenants]})


@router.get("/tenants/{name}")
async def get_tenant(name: TenantName, request: Request, _: Admin) -> Response:
    """The tenant, with its usage now: requests in flight and this month's spend (USD)."""
    svc = services(request)
    tenant = await svc.tenant_store.get(name)
    if tenant is None:
        raise NotFound(f"No tenant '{name}'.", param="name")
    now = time.time()
    usage = {
        "in_flight": await svc.quota.in_flight(f"t:{name}", now),
        "spend_usd_month": str(await svc.quota.spend(f"t:{name}", now)),
    }
    return json_response({**_tenant_document(tenant), "usage": usage})


@router.delete("/tenants/{name}")
async def delete_tenant(name: TenantName, request: Request, _: Admin) -> Response:
    """The tenant's limits and model list go (its keys stay, and work without limits)."""
    if not await services(request).tenant_store.delete(name):
        raise NotFound(f"No tenant '{name}'.", param="name")
    return json_response({"object": "tenant", "name": name, "deleted": True})
