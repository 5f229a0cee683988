"""Bearer API keys → the caller's tenant; which models that tenant may use. Both read caches
that never wait on Redis for a name seen before; a new key waits at most the request path's
Redis deadline, then gets 503 + Retry-After."""

from __future__ import annotations

from fastapi import Request
from redis.exceptions import RedisError

from aibroker.errors import AuthenticationError, ModelNotAllowed
from aibroker.routes import resolve
from aibroker.stores.guard import deadline
from aibroker.stores.keys import KeyInfo
from aibroker.stores.tenants import model_allowed
from ingress.state import Services, services
from schemas.envelopes import Kind


async def authenticate(request: Request) -> KeyInfo:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError("Missing API key: send 'Authorization: Bearer aib_...'.")
    svc = services(request)
    with deadline(svc.settings.redis.request_timeout_s):
        info = await svc.keys.lookup(key.strip())
    if info is None:
        raise AuthenticationError("Incorrect API key provided.")
    return info


async def check_model(svc: Services, caller: KeyInfo, model: str, kind: Kind) -> None:
    """The model exists, serves `kind`, and the caller's tenant may use it (the dispatcher
    checks again, for direct producers)."""
    resolve(model, svc.routes, kind)
    try:
        with deadline(svc.settings.redis.request_timeout_s):
            tenant = await svc.tenants.get(caller.tenant)
    except RedisError:
        return  # Redis down and the tenant not cached: accept; the dispatcher checks again
    if not model_allowed(tenant, model):
        raise ModelNotAllowed(f"Your tenant may not use the model '{model}'.", param="model")
