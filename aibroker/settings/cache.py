"""The response cache's settings (`AIBROKER_CACHE_*`): whether it serves, for how long, how
long it may make a request wait, and who the semantic cache serves."""

from __future__ import annotations

from pydantic import Field

from aibroker.settings.base import SettingsGroup


class CacheSettings(SettingsGroup):
    enabled: bool = False
    """Serve repeated requests from the exact response cache (looked up by ingress and the
    dispatcher, stored by the pools; set it on both). Off: every request is answered by a
    provider and marked `bypass`."""
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
    semantic_tenants: list[str] = Field(default_factory=list)
    """Tenants whose requests the semantic cache also serves (JSON list): a paraphrase of an
    earlier request, its last user turn near enough by embedding, gets that request's answer
    (`x-aibroker-cache: semantic`). Only requests the exact cache looks up, and only short
    conversations (`semantic_max_messages`); needs `semantic_qdrant_url`."""
    semantic_aliases: list[str] = Field(default_factory=list)
    """Model aliases the semantic cache serves for every tenant (JSON list), as
    `semantic_tenants` does for every alias."""
    semantic_threshold: float = Field(default=0.85, ge=0.0, le=1.0)
    """Least cosine similarity of the last user turns for a semantic hit (then the lexical guard,
    `aibroker/rules/semantic.py`, must also agree: numbers, negations, units, ...). Higher: fewer
    hits, fewer wrong answers. 0.85 is the best hit rate with precision >= 0.98 on the labelled
    pairs (`make bench-semantic`, docs/performance/cache.md)."""
    semantic_max_messages: int = Field(default=2, ge=1)
    """Longest conversation the semantic cache serves (messages, the system prompt counted): 2
    is a system prompt and one user turn. Multi-turn and agent traffic is where semantic caches
    answer wrongly."""
    semantic_max_chars: int = Field(default=1000, ge=1)
    """Longest last user turn (characters) the semantic cache embeds: the embedding model reads
    only its first few hundred tokens, so two long prompts that differ further on would look
    the same."""
    semantic_embedding_model: str = "all-minilm-l6-v2"
    """The embeddings model (alias) the last user turn is embedded with: a request on its dispatch
    topic like any other, billed to the caller's tenant (`aibroker dev` serves this one)."""
    semantic_timeout_s: float = 1.0
    """Longest the semantic lookup (embedding and search) and, apart, the storing of a new point
    may take; past it the request is a plain miss, never an error."""
    semantic_qdrant_url: str | None = None
    """Qdrant of the semantic cache (one collection per tenant and target): `http://qdrant:6333`,
    a directory for qdrant-client's local mode (one dispatcher process only), or `:memory:`.
    Unset: no semantic cache. `aibroker dev` sets a directory under its data dir."""
    semantic_qdrant_api_key: str | None = None
    """API key of that Qdrant, if it asks for one."""
