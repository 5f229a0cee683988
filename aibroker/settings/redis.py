"""The Redis settings (`AIBROKER_REDIS_*`): where it is, and how each process talks to it."""

from __future__ import annotations

from aibroker.settings.base import SettingsGroup


class RedisSettings(SettingsGroup):
    url: str | None = None
    """Redis URL: `redis://host:6379/0` (`rediss://` with TLS), or `redis+cluster://host:6379`
    for a Redis Cluster (any one node; the client finds the rest). Unset: `aibroker dev`
    starts the embedded Redis server."""
    ttl_s: int = 86400
    """Lifetime of request state and results in Redis (seconds)."""
    max_connections: int = 64
    """Connections one process keeps to Redis; beyond them callers queue for a free one."""
    call_timeout_s: float = 1.0
    """Deadline of every other Redis call (sinks, pools, the dispatcher, status reads)."""
    request_timeout_s: float = 0.25
    """Deadline of a Redis call on ingress's accept path (a key or tenant not cached,
    Idempotency-Key, the `queued` mark); past it the submission takes its degraded path.
    Status reads and long-polls use `call_timeout_s`."""
    breaker_failures: int = 3
    """Redis calls failing in a row (timed out, refused) after which a process treats Redis
    as down: its calls fail at once, without waiting."""
    breaker_cooldown_s: float = 2.0
    """How long Redis is treated as down before one call probes it again."""
    autopipeline: bool = True
    """Send the Redis commands a process issues in one event-loop turn as one pipeline
    (one round trip per fetched batch of records, not one per command)."""
