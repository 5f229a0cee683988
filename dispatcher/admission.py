"""Admission of fresh requests: the tenant's model list, then quota for the tenant and the
key, with their limits read through short-lived in-process caches."""

from __future__ import annotations

from functools import partial

from aibroker.errors import AuthenticationError, BrokerError, ModelNotAllowed
from aibroker.limits import Limits
from aibroker.rules.quota import Verdict
from aibroker.rules.tokens import estimate_tokens
from aibroker.stores.cache import TtlCache
from aibroker.stores.keys import KeyStore, limits_of_key
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.quota import Quota
from aibroker.stores.tenants import Tenant, TenantStore, model_allowed
from schemas.envelopes import Request


def cut_off(tenant: Tenant | None, request: Request) -> AuthenticationError | None:
    """Work of an inactive tenant, or sent with a key whose tenant was deleted, is refused (a
    key is never served without its tenant's limits). A direct producer's tenant that is not
    in the store is served with no tenant limits, as before tenants existed."""
    if tenant is not None and not tenant.active:
        return AuthenticationError(f"Tenant '{request.tenant}' is inactive.")
    if tenant is None and request.key_id is not None:
        return AuthenticationError(f"Tenant '{request.tenant}' no longer exists.")
    return None


class Admission:
    def __init__(
        self,
        quota: Quota,
        tenants: TenantStore,
        keys: KeyStore,
        *,
        cache_ttl_s: float,
        default_completion_tokens: int,
    ) -> None:
        self._quota = quota
        self._keys = keys
        self._tenants: TtlCache[Tenant | None] = TtlCache(tenants.get, cache_ttl_s)
        self._key_limits: TtlCache[Limits] = TtlCache(partial(limits_of_key, keys), cache_ttl_s)
        self._default_completion = default_completion_tokens

    async def tenant(self, name: str) -> Tenant | None:
        """The tenant as the admission sees it (cached; the input guard reads its policy)."""
        return await self._tenants.get(name)

    async def admit(self, request: Request, now: float) -> Verdict | BrokerError:
        """Charge the request to its tenant's and key's quota if it fits them (the verdict
        says whether it did), or why it may not be served at all."""
        tenant = await self._tenants.get(request.tenant)
        refused = cut_off(tenant, request)
        if refused is not None:
            return refused
        if not model_allowed(tenant, request.model):
            return ModelNotAllowed(
                f"Tenant '{request.tenant}' may not use the model '{request.model}'.",
                param="model",
            )
        scopes = [(quota_scope(request.tenant), tenant.limits if tenant else Limits())]
        if request.key_id:
            key_limits = await self._key_limits.get(request.key_id)
            scopes.append((quota_scope(request.tenant, request.key_id), key_limits))
        tokens = estimate_tokens(request.kind, request.body, self._default_completion)
        return await self._quota.admit(request.id, request.tenant, scopes, tokens, now)
