"""The exact response cache's settings (`AIBROKER_CACHE_*`): whether it serves, for how long,
and how long it may make a request wait."""

from __future__ import annotations

from pydantic import Field

from aibroker.settings.base import SettingsGroup


class CacheSettings(SettingsGroup):
    enabled: bool = False
    """Serve repeated requests from the exact response cache (looked up by the dispatcher,
    stored by the pools). Off: every request is answered by a provider and marked `bypass`."""
    ttl_s: int = 3600
    """How long a cached answer is served (seconds), unless its tenant or alias sets its own."""
    tenant_ttl_s: dict[str, int] = Field(default_factory=dict)
    """TTL per tenant as JSON (`{"acme": 600}`); 0 turns the cache off for that tenant."""
    alias_ttl_s: dict[str, int] = Field(default_factory=dict)
    """TTL per model alias as JSON (`{"gpt-4o": 60}`), over the tenant's; 0: never cached."""
    any_temperature_tenants: list[str] = Field(default_factory=list)
    """Tenants whose non-deterministic requests (no `temperature: 0`, no `seed`) are cached
    too (JSON list). Others opt a request in with the header `x-aibroker-cache: allow`."""
    lookup_timeout_s: float = 0.25
    """Longest one cache call (lookup, lock, store) may wait on Redis; past it the request is
    a miss (never an error, never a longer wait). Timeouts count towards the process's Redis
    breaker (`AIBROKER_REDIS_BREAKER_*`), so keep it above Redis's slowest healthy answers."""
    lock_lease_s: float = 30.0
    """Lease of the single-flight lock one miss takes on its key: identical misses wait for
    its answer, and after the lease they no longer wait (a lost leader strands no one)."""
    wait_poll_s: float = 0.05
    """How often a request waiting on another's identical miss looks for its answer."""
