"""Tenants: their quotas and the models they may use, kept in Redis (`aib:tenant:{name}`) and
seeded at start from the tenants file (YAML; see `seed`)."""

from __future__ import annotations

import base64
import fnmatch
import logging
import secrets
from pathlib import Path
from typing import Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field

from aibroker.guards.policy import Guardrails
from aibroker.limits import Limits
from aibroker.stores.control_view import TENANTS, ControlView, TenantChange, tenant_key
from aibroker.stores.keys import KeyRevoked, KeySpec, KeyStore
from aibroker.stores.redis import RedisClient
from schemas.webhook_events import WebhookEndpoint

TENANT_NAME = r"^[A-Za-z0-9._-]{1,128}$"
log = logging.getLogger(__name__)


class Endpoint(WebhookEndpoint):
    """A webhook endpoint a tenant registered: it hears about every request and batch of the
    tenant (or the events it names), in the broker's shape or OpenAI's (`format`)."""

    disabled_at: float | None = Field(default=None, description="Set when it answered 410.")


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TENANT_NAME)
    active: bool = Field(
        default=True, description="False: its keys and tokens get 401, its work is refused."
    )
    limits: Limits = Field(default_factory=Limits)
    models: list[str] = Field(
        default_factory=list,
        description="Models the tenant may use (names or `*` patterns); empty: every model.",
    )
    webhooks: list[Endpoint] = Field(default_factory=list)
    webhook_secrets: list[str] = Field(
        default_factory=list,
        description="`whsec_` secrets that sign its webhooks, newest first (two while rotating).",
    )
    batch_service_tier: Literal["flex"] | None = Field(
        default=None,
        description="`flex`: the chat lines of its batch jobs ask for OpenAI's flex tier (batch "
        "price, slower) unless a line or the job's `aibroker.defaults` names a tier. For "
        "tenants whose batch models are OpenAI targets: Anthropic and Gemini refuse the field.",
    )
    guardrails: Guardrails | None = Field(
        default=None,
        description="Its guardrail policy (`PUT /admin/v1/guardrails/{tenant}`); none: off.",
    )


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def active_endpoints(tenant: Tenant | None) -> list[Endpoint]:
    """The tenant's webhook endpoints that are not disabled (none for an unknown tenant)."""
    return [e for e in tenant.webhooks if e.disabled_at is None] if tenant else []


def allows(patterns: list[str] | tuple[str, ...], model: str) -> bool:
    """Whether a model list (names or `*` patterns; empty: every model) allows `model`."""
    return not patterns or any(fnmatch.fnmatchcase(model, pattern) for pattern in patterns)


def model_allowed(tenant: Tenant | None, model: str) -> bool:
    """A tenant unknown to the store, or one without a model list, may use every model."""
    return tenant is None or allows(tenant.models, model)


class TenantStore(Protocol):
    """Tenants by name."""

    async def put(self, tenant: Tenant) -> None: ...

    async def get(self, name: str) -> Tenant | None: ...

    async def list(self) -> list[Tenant]: ...

    async def disable_endpoint(self, name: str, url: str, now: float) -> None:
        """An endpoint answered 410 Gone: stop delivering to it."""
        ...

    async def delete(self, name: str) -> bool: ...


class RedisTenantStore:
    """The tenants of the control plane's view (`control_view.py`): `…:tenant:{name}` → the
    tenant as JSON; `…:tenants` → every name. Writes take effect through the view's commit: at
    once, or through the config topic."""

    def __init__(self, redis: RedisClient, view: ControlView | None = None) -> None:
        self._redis = redis
        self._view = view or ControlView(redis)

    async def put(self, tenant: Tenant) -> None:
        await self._view.commit([TenantChange(tenant.name, tenant.model_dump_json())])

    async def get(self, name: str) -> Tenant | None:
        found = await self._view.read(self._redis.get(tenant_key(name)))
        return Tenant.model_validate_json(found) if found else None

    async def list(self) -> list[Tenant]:
        names = sorted(await self._redis.smembers(TENANTS))
        found = [await self.get(str(name)) for name in names]
        return [t for t in found if t is not None]

    async def disable_endpoint(self, name: str, url: str, now: float) -> None:
        """An endpoint answered 410 Gone: stop delivering to it."""
        tenant = await self.get(name)
        if tenant is None:
            return
        for endpoint in tenant.webhooks:
            if endpoint.url == url and endpoint.disabled_at is None:
                endpoint.disabled_at = now
        await self.put(tenant)

    async def delete(self, name: str) -> bool:
        if not await self._redis.exists(tenant_key(name)):
            return False
        await self._view.commit([TenantChange(name, None)])
        return True


class SeedKey(KeySpec):
    """A key in the tenants file: its SHA-256 (hex) and the first characters to list it by,
    or, for development only, the key itself; then what any key has (name, environment,
    expires_at, models, limits, roles)."""

    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    prefix: str = "aib_"
    key: str | None = None


class SeedTenant(Tenant):
    keys: list[SeedKey] = Field(default_factory=list)


class TenantsFile(BaseModel):
    """```yaml
    tenants:
      - name: acme
        limits: {rpm: 600, tpm: 200000, concurrency: 32, budget_usd_month: 500}
        models: [gpt-4o-mini, "mock/*"]
        keys:
          - {sha256: <hex of sha256(key)>, prefix: aib_3kX9, name: backend, limits: {rpm: 60}}
          - {sha256: <hex>, prefix: aib_Q7d2, environment: test, models: ["mock/*"]}
          - {sha256: <hex>, prefix: aib_a8Jk, roles: [tenant_admin]}
    ```"""

    model_config = ConfigDict(extra="forbid")

    tenants: list[SeedTenant] = Field(default_factory=list)


async def seed(path: Path, tenants: TenantStore, keys: KeyStore) -> int:
    """Write the file's tenants and keys (idempotent: every replica may seed at start; the
    file wins over earlier admin changes to the same tenants). Returns the tenants seeded."""
    with path.open() as fh:
        document = TenantsFile.model_validate(yaml.safe_load(fh) or {})
    for entry in document.tenants:
        tenant = Tenant.model_validate(entry.model_dump(exclude={"keys"}))
        if await tenants.get(tenant.name) != tenant:  # unchanged: nothing written, nor logged
            await tenants.put(tenant)
        for key in entry.keys:
            spec = KeySpec.model_validate(key.model_dump(exclude={"sha256", "prefix", "key"}))
            try:
                if key.key is not None:
                    await keys.add(entry.name, key.key, spec)
                elif key.sha256 is not None:
                    await keys.add_hashed(entry.name, key.sha256, key.prefix, spec)
                else:
                    raise ValueError(f"a key of tenant '{entry.name}' has neither sha256 nor key")
            except KeyRevoked:
                log.warning("a revoked key of %s (%s) is not seeded", entry.name, key.prefix)
    return len(document.tenants)
