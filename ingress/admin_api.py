"""The admin API (its own bearer key, `AIBROKER_ADMIN_API_KEY`): tenants' API keys."""

from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from aibroker.errors import AdminDisabled, AuthenticationError, NotFound
from ingress.state import services
from ingress.views import json_response

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
    tenant: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")


@router.post("/keys", status_code=201)
async def create_key(body: NewKey, request: Request, _: Admin) -> Response:
    """A new API key for the tenant; the key itself is in this answer and nowhere else."""
    store = services(request).key_store
    plaintext, info = await store.add(body.tenant)
    record = await store.record(info.key_id)
    assert record is not None
    return json_response({"object": "api_key", "key": plaintext, **asdict(record)}, 201)


@router.get("/keys")
async def list_keys(tenant: str, request: Request, _: Admin) -> Response:
    records = await services(request).key_store.list(tenant)
    data = [{"object": "api_key", **asdict(r)} for r in records]
    return json_response({"object": "list", "data": data})


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request, _: Admin) -> Response:
    """The key stops working within the key cache's TTL (`AIBROKER_INGRESS_KEY_CACHE_TTL_S`)."""
    record = await services(request).key_store.revoke(key_id)
    if record is None:
        raise NotFound(f"No key with id '{key_id}'.", param="key_id")
    return json_response({"object": "api_key", **asdict(record)})
