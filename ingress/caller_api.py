"""`GET /admin/v1/caller`: who the credential is and what it may do, so a client (the console)
can hide what it would be refused instead of learning it from 403s. It grants nothing: every
route still checks its own permission."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from aibroker.identity import GRANTS
from ingress.auth import Admin
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1", tags=["admin"])


@router.get("/caller")
async def caller_document(caller: Admin) -> Response:
    """The caller's subject, tenant (none: every tenant), roles and permissions; a tenant
    admin's permissions hold on its own tenant only."""
    permissions = sorted({p.value for role in caller.roles for p in GRANTS[role]})
    return json_response(
        {
            "object": "caller",
            "subject": caller.subject,
            "tenant": caller.tenant,
            "roles": sorted(r.value for r in caller.roles),
            "permissions": permissions,
        }
    )
