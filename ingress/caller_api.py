"""`GET /admin/v1/caller`: who the credential is and what it may do, so a client (the console)
can hide what it would be refused instead of learning it from 403s. It grants nothing: every
route still checks its own permission. `GET /admin/v1/sign-in`: the OIDC issuers a browser may
sign in with (authorization code with PKCE), needing no credential: it names only what each
issuer publishes anyway."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from aibroker.identity import GRANTS
from aibroker.settings import JwtIssuer
from ingress.auth import Admin
from ingress.state import services
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


def sign_in_issuer(issuer: JwtIssuer) -> dict[str, Any]:
    """What a browser needs to start the flow: the issuer (its discovery document sits under
    it) and the client id, which is the audience the broker checks: an ID token's `aud` is the
    client it was issued to."""
    base = issuer.issuer.rstrip("/")
    return {
        "issuer": issuer.issuer,
        "client_id": issuer.audience,
        "discovery_url": f"{base}/.well-known/openid-configuration",
    }


@router.get("/sign-in")
async def sign_in_options(request: Request) -> Response:
    """The trusted JWT issuers, for an OIDC sign-in (none configured: an empty list)."""
    issuers = services(request).settings.auth.jwt_issuers
    return json_response({"object": "sign_in", "issuers": [sign_in_issuer(i) for i in issuers]})
