"""`x-ratelimit-*` on the answers of the OpenAI-compatible routes, as OpenAI sends them: for
requests and for tokens, the limit, what remains and when the bucket is full again, of the
tightest scope (the tenant's or the key's) that sets one. Best effort: one pipelined Redis
read after the answer is made, within `HEADERS_DEADLINE_S`; nothing is added when Redis is
slower, or no limit is set (then nothing is read)."""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from aibroker.identity import Client
from aibroker.limits import Limits
from aibroker.rules.quota import Bucket
from aibroker.stores.guard import deadline
from aibroker.stores.keyspace import quota_scope
from ingress.state import Services

MEASURES = {"rpm": "requests", "tpm": "tokens"}
HEADERS_DEADLINE_S = 0.05
"""Headers are not worth more: a slow Redis costs an answer at most this much."""


def duration(seconds: float) -> str:
    """A reset time as OpenAI writes it: `20ms`, `1s`, `6m0s`, `1m30.5s`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    rest_text = f"{round(rest, 3):g}s"
    return f"{int(minutes)}m{rest_text}" if minutes else rest_text


def tightest(buckets: list[dict[str, Bucket]]) -> dict[str, str]:
    """The headers of the bucket with the least remaining, per measure."""
    headers: dict[str, str] = {}
    for limit, name in MEASURES.items():
        found = [b[limit] for b in buckets if limit in b]
        if not found:
            continue
        bucket = min(found, key=lambda b: (b.remaining, -b.reset_s))
        headers[f"x-ratelimit-limit-{name}"] = str(bucket.limit)
        headers[f"x-ratelimit-remaining-{name}"] = str(bucket.remaining)
        headers[f"x-ratelimit-reset-{name}"] = duration(bucket.reset_s)
    return headers


async def ratelimit_headers(svc: Services, caller: Client) -> dict[str, str]:
    try:
        with deadline(min(HEADERS_DEADLINE_S, svc.settings.redis.request_timeout_s)):
            tenant = await svc.tenants.get(caller.tenant)
            scopes: list[tuple[str, Limits]] = (
                [(quota_scope(caller.tenant), tenant.limits)] if tenant else []
            )
            if caller.key_id:
                key_limits = await svc.key_limits.get(caller.key_id)
                scopes.append((quota_scope(caller.tenant, caller.key_id), key_limits))
            scopes = [(s, limits) for s, limits in scopes if limits.rpm or limits.tpm]
            if not scopes:
                return {}
            now = time.time()
            buckets = [await svc.quota.buckets(scope, limits, now) for scope, limits in scopes]
    except RedisError:
        return {}
    return tightest(buckets)
