"""Admin routes of API keys: create (shown once), list, read, rotate, revoke. Every route
checks its permission on the key's tenant, and every change is audited."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from aibroker.errors import InvalidRequest, NotFound
from aibroker.identity import Caller, Permission, Role, scope_of
from aibroker.limits import exceeded
from aibroker.stores.keys import KeyRecord, KeySpec
from aibroker.stores.tenants import TENANT_NAME, allows
from ingress.auth import Admin, authorize, deny
from ingress.state import services
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1", tags=["admin"])

MAX_GRACE_S = 30 * 86400.0


class NewKey(KeySpec):
    tenant: str | None = Field(
        default=None, pattern=TENANT_NAME, description="None only for admin and viewer keys."
    )


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_s: float | None = Field(
        default=None, ge=0, le=MAX_GRACE_S, description="How long the old key keeps working."
    )


def key_document(record: KeyRecord, **extra: Any) -> dict[str, Any]:
    doc = {"object": "api_key", **extra, **asdict(record)}
    doc["limits"] = record.limits.model_dump(mode="json", exclude_none=True)
    return doc


async def _record(
    request: Request, caller: Caller, key_id: str, permission: Permission
) -> KeyRecord:
    record = await services(request).key_store.record(key_id)
    if record is None:
        raise NotFound(f"No key with id '{key_id}'.", param="key_id")
    await authorize(request, caller, permission, record.tenant)
    return record


async def _check_new_key(request: Request, caller: Caller, body: NewKey) -> None:
    """A key's grants stay within its tenant's and within what its creator may give."""
    global_roles = {Role.ADMIN, Role.VIEWER} & set(body.roles)
    if global_roles and Role.ADMIN not in caller.roles:
        await deny(
            request,
            caller,
            "key.create",
            body.tenant,
            "Only an admin may create admin or viewer keys.",
        )
    if body.expires_at is not None and body.expires_at <= time.time():
        raise InvalidRequest("expires_at is in the past.", param="expires_at")
    if body.tenant is None:
        if not body.roles or Role.TENANT_ADMIN in body.roles:
            raise InvalidRequest(
                "A key needs a tenant unless it is an admin or viewer key.", param="tenant"
            )
        return
    tenant = await services(request).tenant_store.get(body.tenant)
    if tenant is None:
        raise NotFound(f"No tenant '{body.tenant}'.", param="tenant")
    for model in body.models:
        if not allows(tenant.models, model):
            raise InvalidRequest(f"The tenant may not use '{model}'.", param="models")
    too_high = exceeded(body.limits, tenant.limits)
    if too_high and Role.ADMIN not in caller.roles:
        message = f"limits.{too_high} is above the tenant's; only an admin may grant it."
        await deny(request, caller, "key.create", body.tenant, message)


@router.post("/keys", status_code=201)
async def create_key(body: NewKey, request: Request, caller: Admin) -> Response:
    """A new API key for the tenant (or an admin or viewer key of no tenant); the key itself
    is in this answer and nowhere else."""
    await authorize(request, caller, Permission.KEYS_WRITE, body.tenant)
    svc = services(request)
    await _check_new_key(request, caller, body)
    spec = KeySpec.model_validate(body.model_dump(exclude={"tenant"}))
    plaintext, info = await svc.key_store.add(body.tenant, spec=spec)
    record = await svc.key_store.record(info.key_id)
    assert record is not None
    await svc.auditor.record(
        request,
        caller,
        "key.create",
        tenant=body.tenant,
        target=record.key_id,
        detail=_audited(record),
    )
    return json_response(key_document(record, key=plaintext), 201)


def _audited(record: KeyRecord) -> dict[str, Any]:
    """What the audit log keeps of a key: never the key, its hash, or more than its prefix."""
    keep = ("prefix", "name", "environment", "expires_at", "models", "roles")
    return {name: getattr(record, name) for name in keep}


@router.get("/keys")
async def list_keys(
    request: Request,
    caller: Admin,
    tenant: Annotated[
        str | None, Query(description="Unset: admin keys (or, for a tenant admin, its tenant's).")
    ] = None,
) -> Response:
    scope = scope_of(caller, tenant)
    await authorize(request, caller, Permission.KEYS_READ, scope)
    svc = services(request)
    records = await svc.key_store.list(scope)
    used = await svc.key_use.last_used([r.key_id for r in records])  # stale by a minute at most
    data = [key_document(r, last_used_at=used.get(r.key_id)) for r in records]
    return json_response({"object": "list", "data": data})


@router.get("/keys/{key_id}")
async def get_key(key_id: str, request: Request, caller: Admin) -> Response:
    return json_response(key_document(await _record(request, caller, key_id, Permission.KEYS_READ)))


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request, caller: Admin) -> Response:
    """The key stops working within the key cache's TTL (`AIBROKER_INGRESS_KEY_CACHE_TTL_S`)."""
    record = await _record(request, caller, key_id, Permission.KEYS_WRITE)
    svc = services(request)
    revoked = await svc.key_store.revoke(key_id)
    assert revoked is not None
    await svc.auditor.record(
        request, caller, "key.revoke", tenant=record.tenant, target=key_id, detail=_audited(record)
    )
    return json_response(key_document(revoked))


@router.post("/keys/{key_id}/rotate", status_code=201)
async def rotate_key(key_id: str, body: Rotation, request: Request, caller: Admin) -> Response:
    """A new key with the old one's name, environment, models, limits and roles; the old one
    keeps working for `grace_s` (default `AIBROKER_AUTH_ROTATION_GRACE_S`), then expires."""
    record = await _record(request, caller, key_id, Permission.KEYS_WRITE)
    if record.revoked_at is not None:
        raise InvalidRequest("A revoked key cannot be rotated; create a new one.", param="key_id")
    svc = services(request)
    grace_s = svc.settings.auth.rotation_grace_s if body.grace_s is None else body.grace_s
    plaintext, new = await svc.key_store.rotate(key_id, grace_s, time.time())
    await svc.auditor.record(
        request,
        caller,
        "key.rotate",
        tenant=record.tenant,
        target=key_id,
        detail={"new_key_id": new.key_id, "prefix": new.prefix, "grace_s": grace_s},
    )
    return json_response(key_document(new, key=plaintext), 201)
