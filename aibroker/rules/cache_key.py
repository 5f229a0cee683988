"""The exact response cache's decisions, pure: the key a request's answer is stored under and
whether this request may be served from the cache, stored in it, or neither.

The key is the tenant, the alias, the resolved target (provider and upstream model) and a
SHA-256 of the whole body in canonical form (keys sorted, `1.0` and `1` the same number). Every
field of the body is in it except the few that cannot change the answer (`IGNORED`); a field
this module has never heard of (a provider-specific extra) is in it too, so a new parameter
can only cost a miss, never serve a wrong answer.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import orjson

from schemas.envelopes import CacheDirective, CacheMark, Kind, Target

IGNORED = frozenset({"user", "stream", "stream_options", "metadata", "store"})
"""Body fields left out of the key: who asked (`user`), how the answer is carried (`stream`,
`stream_options`) and labels kept beside it (`metadata`, `store`)."""

PREFIX = "aib:rc"
"""Every cached answer is under `aib:rc:<tenant>:<alias>:<hash>`; names are percent-encoded,
so a tenant's or alias's entries are one glob away and no name can match another's."""


class Use(StrEnum):
    """What the cache does for one request."""

    LOOKUP = "lookup"
    """Served from the cache when the answer is there; stored when a provider answers."""
    STORE = "store"
    """Not looked up (`Cache-Control: no-cache`), but the provider's answer is stored."""
    BYPASS = "bypass"
    """Neither looked up nor stored."""


@dataclass(frozen=True)
class CachePolicy:
    """The cache's settings as plain values (see `CacheSettings`)."""

    enabled: bool = True
    ttl_s: int = 3600
    tenant_ttl_s: dict[str, int] = field(default_factory=dict)
    alias_ttl_s: dict[str, int] = field(default_factory=dict)
    any_temperature_tenants: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Plan:
    use: Use
    ttl_s: int = 0
    """How long a stored answer is served (0 when nothing is stored)."""

    @property
    def mark(self) -> CacheMark:
        """What the answer says when a provider answered it (a hit is marked by the lookup)."""
        return CacheMark.MISS if self.use is Use.LOOKUP else CacheMark.BYPASS


def canonical(value: Any) -> Any:
    """`value` with every integral float made an int (`1.0` → `1`), recursively; dict key
    order is left to the serialiser (sorted)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return str(value)


def body_hash(body: dict[str, Any]) -> str:
    """SHA-256 of the body's fields that can change the answer, in canonical form."""
    kept = {k: v for k, v in body.items() if k not in IGNORED}
    data = orjson.dumps(canonical(kept), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def scope_pattern(tenant: str | None = None, alias: str | None = None) -> str:
    """The glob of the keys of a tenant (all tenants: None), of an alias (all: None)."""
    t = _name(tenant) if tenant is not None else "*"
    a = _name(alias) if alias is not None else "*"
    return f"{PREFIX}:{t}:{a}:*"


def cache_key(tenant: str, alias: str, kind: Kind, target: Target, body: dict[str, Any]) -> str:
    """Where the answer to `body` from `target`, asked by `tenant` through `alias`, is kept. A
    different target (a route or price change chose another) is another key."""
    digest = hashlib.sha256(
        orjson.dumps([kind.value, target.provider, target.model, body_hash(body)])
    ).hexdigest()
    return f"{PREFIX}:{_name(tenant)}:{_name(alias)}:{digest}"


def deterministic(kind: Kind, body: dict[str, Any]) -> bool:
    """Whether the same body is expected to get the same answer: embeddings and OCR always;
    chat (and the Responses API) with `temperature: 0` or a `seed`."""
    if kind not in (Kind.CHAT, Kind.RESPONSES):
        return True
    return body.get("temperature") == 0 or body.get("seed") is not None


def plan(
    tenant: str,
    alias: str,
    kind: Kind,
    body: dict[str, Any],
    directive: CacheDirective,
    policy: CachePolicy,
) -> Plan:
    """What the cache does for this request. `no-store` wins over everything; a TTL of 0 (the
    alias's, else the tenant's) turns the cache off; a non-deterministic request is cached only
    when its tenant or the request (`allow`) opts in; `no-cache` stores without looking up."""
    ttl_s = policy.alias_ttl_s.get(alias, policy.tenant_ttl_s.get(tenant, policy.ttl_s))
    if not policy.enabled or directive is CacheDirective.NO_STORE or ttl_s <= 0:
        return Plan(Use.BYPASS)
    opted_in = directive is CacheDirective.ALLOW or tenant in policy.any_temperature_tenants
    if not opted_in and not deterministic(kind, body):
        return Plan(Use.BYPASS)
    if directive is CacheDirective.NO_CACHE:
        return Plan(Use.STORE, ttl_s)
    return Plan(Use.LOOKUP, ttl_s)


def _name(text: str) -> str:
    return quote(text, safe="")


def directive(cache_control: list[str], opt_in: str | None) -> CacheDirective:
    """The client's cache directive from its `Cache-Control` headers (`no-store` beats
    `no-cache`) and `x-aibroker-cache: allow` (cache this request even if it is not
    deterministic)."""
    said = {d.strip().split("=")[0].lower() for h in cache_control for d in h.split(",")}
    if "no-store" in said:
        return CacheDirective.NO_STORE
    if "no-cache" in said:
        return CacheDirective.NO_CACHE
    if (opt_in or "").strip().lower() == "allow":
        return CacheDirective.ALLOW
    return CacheDirective.DEFAULT
