"""Who is calling: a bearer API key or a JWT from a configured issuer (or, on the admin API,
the bootstrap admin key), resolved to a `Caller`. Keys and tenants are read through caches
that never wait on Redis for a name seen before; a new key waits at most the request path's
Redis deadline, then gets 503 + Retry-After.

A key is refused (401) when it is unknown or revoked, expired, or its tenant is deleted or
inactive; a key is never served without its tenant, so never without its tenant's limits.
Each refusal is counted in the audit log. Its actor is who proved to be calling (a key that
matched, a token that verified, refused for its tenant or expiry) or else `anonymous`, with
what was presented kept apart as unverified: the prefix of a key that does not exist, a
token's `jwt:<sub>` and `iss`, or a digest of anything else."""

from __future__ import annotations

import hmac
import time
from typing import Annotated, NoReturn

from fastapi import Depends, Request
from redis.exceptions import RedisError

from aibroker.errors import AuthenticationError, ModelNotAllowed, PermissionDenied
from aibroker.identity import Caller, Client, Permission, Role, may
from aibroker.routes import resolve
from aibroker.stores.guard import deadline
from aibroker.stores.keys import KEY_PREFIX, hash_key, visible_prefix
from aibroker.stores.tenants import allows, model_allowed
from ingress.state import Services, services
from ingress.tokens import TokenRefused, looks_like_jwt
from schemas.audit import ANONYMOUS, AuditOutcome
from schemas.envelopes import Kind

MAX_CREDENTIAL_CHARS = 16 * 1024
"""A bearer credential longer than this is refused unread (the HTTP server takes headers of
megabytes; a key is 47 characters, an OIDC token a few kilobytes)."""


class _Refused(Exception):
    def __init__(
        self,
        message: str,
        code: str,
        *,
        actor: str = ANONYMOUS,
        claimed: str | None = None,
        claimed_issuer: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.code, self.actor = message, code, actor
        self.claimed, self.claimed_issuer = claimed, claimed_issuer


def _digest(token: str) -> str:
    """How the audit log knows a credential that is not ours: never by its characters."""
    return f"sha256:{hash_key(token)[:12]}"


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Missing API key: send 'Authorization: Bearer aib_...'.")
    return token.strip()


async def _identify(svc: Services, token: str) -> Caller:
    """The caller a token proves, or `_Refused` saying why not."""
    if len(token) > MAX_CREDENTIAL_CHARS:
        raise _Refused("The bearer credential is too long.", "too_long", claimed=_digest(token))
    if token.startswith(KEY_PREFIX):
        caller = await _key_caller(svc, token)
    elif svc.issuers and looks_like_jwt(token):
        try:
            claims = await svc.issuers.verify(token)
        except TokenRefused as refused:
            raise _Refused(
                refused.reason,
                "token_refused",
                claimed=refused.claimed_subject or _digest(token),
                claimed_issuer=refused.claimed_issuer,
            ) from refused
        caller = Caller(
            subject=f"jwt:{claims.subject}",
            tenant=claims.tenant,
            roles=claims.roles,
            user=claims.user,
        )
    else:
        raise _Refused("Incorrect API key provided.", "unknown_key", claimed=_digest(token))
    if caller.tenant is not None:
        with deadline(svc.settings.redis.request_timeout_s):
            tenant = await svc.tenants.get(caller.tenant)
        if tenant is None:
            raise _Refused(
                "The tenant of this credential no longer exists.", "no_tenant", actor=caller.subject
            )
        if not tenant.active:
            raise _Refused(
                "The tenant of this credential is inactive.", "inactive", actor=caller.subject
            )
    return caller


async def _key_caller(svc: Services, token: str) -> Caller:
    with deadline(svc.settings.redis.request_timeout_s):
        info = await svc.keys.lookup(token)
    if info is None:
        raise _Refused("Incorrect API key provided.", "unknown_key", claimed=visible_prefix(token))
    if info.expired(time.time()):
        raise _Refused("This API key has expired.", "expired", actor=info.prefix)
    svc.key_use.used(info.key_id, time.time())
    return Caller(
        subject=info.prefix,
        tenant=info.tenant,
        roles=info.roles,
        key_id=info.key_id,
        models=info.models,
    )


async def _caller(request: Request) -> Caller:
    svc = services(request)
    token = _bearer(request)
    bootstrap = svc.settings.admin.api_key
    if bootstrap and hmac.compare_digest(token.encode(), bootstrap.encode()):
        return Caller(subject="bootstrap", roles=frozenset({Role.ADMIN}))
    try:
        return await _identify(svc, token)
    except _Refused as refused:
        svc.auditor.refused(
            request,
            refused.code,
            actor=refused.actor,
            claimed=refused.claimed,
            claimed_issuer=refused.claimed_issuer,
        )
        raise AuthenticationError(refused.message) from None


async def authenticate(request: Request) -> Client:
    """The dependency of the OpenAI-compatible routes: a tenant's key or token."""
    caller = await _caller(request)
    if caller.tenant is None:
        services(request).auditor.refused(request, "no_tenant", actor=caller.subject)
        raise AuthenticationError("This credential belongs to no tenant: it is for /admin only.")
    request.state.caller = caller
    return Client(caller.tenant, caller.key_id, caller.user, caller.models)


async def admin_caller(request: Request) -> Caller:
    """The dependency of the admin routes: any authenticated caller with an admin role."""
    caller = await _caller(request)
    if not caller.roles:
        await deny(
            request, caller, "admin.access", caller.tenant, "This credential has no admin role."
        )
    return caller


Admin = Annotated[Caller, Depends(admin_caller)]
"""An admin route's caller: authenticated, with some admin role (each route then checks its
permission on the object's tenant with `authorize`)."""


async def authorize(
    request: Request, caller: Caller, permission: Permission, tenant: str | None
) -> None:
    """Raise 403 (audited) unless `caller` may do `permission` on `tenant`'s objects."""
    if may(caller, permission, tenant):
        return
    where = f"tenant '{tenant}'" if tenant else "every tenant"
    await deny(
        request,
        caller,
        permission.value,
        tenant,
        f"Your role may not do '{permission.value}' on {where}.",
    )


async def deny(
    request: Request, caller: Caller, action: str, tenant: str | None, message: str
) -> NoReturn:
    """Refuse with 403 `permission_denied`, and write the refusal to the audit log."""
    await services(request).auditor.record(
        request,
        caller,
        action,
        tenant=tenant,
        target=request.url.path,
        outcome=AuditOutcome.DENIED,
        detail={"reason": message},
    )
    raise PermissionDenied(message)


async def check_model(svc: Services, caller: Client, model: str, kind: Kind) -> None:
    """The model exists, serves `kind`, and the caller's key and tenant may use it (the
    dispatcher checks the tenant again, for direct producers)."""
    resolve(model, svc.routes, kind)
    if not allows(caller.models, model):
        raise ModelNotAllowed(f"This API key may not use the model '{model}'.", param="model")
    try:
        with deadline(svc.settings.redis.request_timeout_s):
            tenant = await svc.tenants.get(caller.tenant)
    except RedisError:
        return  # Redis down and the tenant not cached: accept; the dispatcher checks again
    if not model_allowed(tenant, model):
        raise ModelNotAllowed(f"Your tenant may not use the model '{model}'.", param="model")
