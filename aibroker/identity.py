"""Who is calling, and what they may do: roles, permissions, and the pure rules that decide.

A caller is an API key (a tenant's key, or an admin key with a role), a JWT from a configured
issuer (a tenant plus a user, maybe with roles), or the bootstrap admin key
(`AIBROKER_ADMIN_API_KEY`). The admin API asks `may(caller, permission, tenant)` on every
route; `tenant` is the tenant the object belongs to, or None for what spans tenants."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """Roles on the admin API."""

    ADMIN = "admin"
    """Everything, on every tenant."""
    TENANT_ADMIN = "tenant_admin"
    """Its own tenant's keys (with limits within the tenant's), usage, DLQ entries, webhooks."""
    VIEWER = "viewer"
    """Reads everything, changes nothing."""


class Permission(StrEnum):
    TENANTS_READ = "tenants:read"
    TENANTS_WRITE = "tenants:write"
    KEYS_READ = "keys:read"
    KEYS_WRITE = "keys:write"
    USAGE_READ = "usage:read"
    DLQ_READ = "dlq:read"
    DLQ_WRITE = "dlq:write"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    AUDIT_READ = "audit:read"
    HEALTH_READ = "health:read"
    RATELIMIT_READ = "ratelimit:read"
    RATELIMIT_WRITE = "ratelimit:write"
    CACHE_READ = "cache:read"
    CACHE_WRITE = "cache:write"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.VIEWER: frozenset(p for p in Permission if p.endswith(":read")),
    Role.TENANT_ADMIN: frozenset(
        {
            Permission.TENANTS_READ,
            Permission.KEYS_READ,
            Permission.KEYS_WRITE,
            Permission.USAGE_READ,
            Permission.DLQ_READ,
            Permission.DLQ_WRITE,
            Permission.WEBHOOKS_READ,
            Permission.WEBHOOKS_WRITE,
            Permission.RATELIMIT_READ,
            Permission.AUDIT_READ,
            Permission.CACHE_READ,
            Permission.CACHE_WRITE,
        }
    ),
}
"""What each role may do. A tenant admin's grants hold on its own tenant only (`may`)."""


@dataclass(frozen=True)
class Caller:
    """An authenticated caller."""

    subject: str
    """Who, for the audit log: a key's visible prefix, a JWT's `sub`, or `bootstrap`."""
    tenant: str | None = None
    """The tenant it acts for (None: an admin or viewer of every tenant)."""
    roles: frozenset[Role] = field(default_factory=frozenset)
    """Admin roles; none for a caller of the OpenAI API only."""
    key_id: str | None = None
    user: str | None = None
    """The end user a JWT names (usage and audit records carry it)."""
    models: tuple[str, ...] = ()
    """A key's own model allow-list, narrower than its tenant's (empty: the tenant's)."""

    @property
    def role(self) -> Role | None:
        """The strongest role, for the audit log."""
        for role in Role:  # declared strongest first
            if role in self.roles:
                return role
        return None


@dataclass(frozen=True)
class Client:
    """A caller of the OpenAI-compatible API: always a tenant's."""

    tenant: str
    key_id: str | None = None
    user: str | None = None
    models: tuple[str, ...] = ()
    """Its key's own model allow-list (empty: its tenant's)."""


def may(caller: Caller, permission: Permission, tenant: str | None) -> bool:
    """Whether `caller` may do `permission` on an object of `tenant` (None: across tenants,
    which a tenant admin never may)."""
    for role in caller.roles:
        if permission not in GRANTS[role]:
            continue
        if role is not Role.TENANT_ADMIN:
            return True
        if tenant is not None and tenant == caller.tenant:
            return True
    return False


def scope_of(caller: Caller, asked: str | None) -> str | None:
    """The tenant a listing covers: what was asked, or the caller's own tenant when it may
    only see its own (a tenant admin who asks for nothing gets its tenant)."""
    if asked is None and Role.ADMIN not in caller.roles and Role.VIEWER not in caller.roles:
        return caller.tenant
    return asked
