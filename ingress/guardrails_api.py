"""Admin routes of guardrail policies: `PUT/GET /admin/v1/guardrails/{tenant}` (kept in the
tenant record, so every service reads it with the tenant, within the tenant cache's TTL) and
`POST /admin/v1/guardrails/test`, which runs a tenant's policy on a text and shows what each
guard found. Admins set policies (`tenants:write`, audited); viewers and a tenant's admins read
and test them (`tenants:read`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from aibroker.errors import NotFound
from aibroker.guards.pii import find
from aibroker.guards.policy import GuardAction, GuardPolicy, Guardrails, policy_of
from aibroker.guards.scan import scan_texts
from aibroker.identity import Permission
from aibroker.stores.tenants import Tenant
from ingress.auth import Admin, authorize
from ingress.state import Services, services
from ingress.tenants_api import TenantName
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1/guardrails", tags=["admin"])

MAX_TEST_CHARS = 100_000


class TestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str
    text: str = Field(max_length=MAX_TEST_CHARS)
    model: str | None = Field(default=None, description="The alias whose policy applies.")
    policy: GuardPolicy | None = Field(
        default=None, description="Try this policy instead of the tenant's (nothing is saved)."
    )


async def _tenant(svc: Services, name: str) -> Tenant:
    tenant = await svc.tenant_store.get(name)
    if tenant is None:
        raise NotFound(f"No tenant '{name}'.", param="tenant")
    return tenant


def _document(tenant: Tenant) -> dict[str, Any]:
    policy = tenant.guardrails or Guardrails()
    return {"object": "guardrails", "tenant": tenant.name, **policy.model_dump(mode="json")}


@router.put("/{name}")
async def put_guardrails(
    name: TenantName, body: Guardrails, request: Request, caller: Admin
) -> Response:
    """Replace the tenant's guardrail policy (ingress applies it at once here, every other
    replica and the dispatcher within their tenant caches' TTL)."""
    await authorize(request, caller, Permission.TENANTS_WRITE, name)
    svc = services(request)
    tenant = await _tenant(svc, name)
    tenant.guardrails = body
    await svc.tenant_store.put(tenant)
    svc.tenants.forget(name)
    await svc.auditor.record(
        request,
        caller,
        "guardrails.put",
        tenant=name,
        target=name,
        detail=body.model_dump(mode="json"),
    )
    return json_response(_document(tenant))


@router.get("/{name}")
async def get_guardrails(name: TenantName, request: Request, caller: Admin) -> Response:
    """The tenant's policy (every guard `off` where it has none)."""
    await authorize(request, caller, Permission.TENANTS_READ, name)
    return json_response(_document(await _tenant(services(request), name)))


@router.post("/test")
async def test_guardrails(body: TestBody, request: Request, caller: Admin) -> Response:
    """What the tenant's input policy (or `policy`) does to `text`: per guard, its action,
    the findings (type and span), the text as redacted, and whether it would be blocked.
    Guards that are `off` are run too, so a policy can be tried before it is set."""
    await authorize(request, caller, Permission.TENANTS_READ, body.tenant)
    tenant = await _tenant(services(request), body.tenant)
    policy = body.policy or policy_of(tenant.guardrails, body.model or "")
    action = policy.input.pii
    findings = find(body.text)
    redacted, _ = scan_texts({"text": body.text}, rewrite=True)
    pii = {
        "action": action.value,
        "findings": [{"type": f.entity.value, "start": f.start, "end": f.end} for f in findings],
        "redacted": redacted["text"],
        "sent": redacted["text"] if action is GuardAction.REDACT else body.text,
        "blocked": action is GuardAction.BLOCK and bool(findings),
    }
    return json_response(
        {"object": "guardrails.test", "tenant": tenant.name, "guards": {"pii": pii}}
    )
