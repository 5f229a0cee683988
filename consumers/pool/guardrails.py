"""The output guardrails in a pool: the tenant's `output` policy run on an answer before its
result is published (and, for a stream, on each chunk before it is released), and the input's
placeholders restored where the policy asks for it. The pool is where every answer of every
engine is first seen and the one place that publishes it, so `results`, the reply topics,
Redis, webhooks, batch output files and the response cache only ever hold the guarded answer.

The policy is read with the tenant before the engine is called, so an answer is never paid for
without knowing what may be done with it. While Redis cannot give a tenant this pool has never
seen, the read raises and the worker retries the request in place: output guards fail closed.
The map of a reversible redaction that cannot be read is skipped (the answer keeps its
placeholders): failing open there leaks nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from aibroker.guards.output import guard_output
from aibroker.guards.output_stream import ChunkGuard
from aibroker.guards.policy import GuardAction, Verdict, policy_of
from aibroker.guards.restore_store import RestoreMaps
from aibroker.kafka.publisher import Publisher
from aibroker.settings import Settings
from aibroker.stores.cache import TtlCache
from aibroker.stores.redis import RedisClient
from aibroker.stores.tenants import RedisTenantStore, Tenant
from aibroker.telemetry.guardrails import blocked_entry, noted
from schemas.envelopes import Kind, Request, UsageEvent
from schemas.openai import Usage

log = logging.getLogger(__name__)

TenantLookup = Callable[[str], Awaitable[Tenant | None]]

UNGUARDED_KINDS = frozenset({Kind.EMBEDDINGS, Kind.MODERATIONS})
"""Kinds whose answers hold no text a model wrote (vectors, moderation scores): never scanned."""


@dataclass(frozen=True)
class OutputPlan:
    """What the output side does to one request's answer."""

    action: GuardAction = GuardAction.OFF
    values: dict[str, str] = field(default_factory=dict)
    """Placeholder → the caller's value (reversible redaction), or empty."""
    window_chars: int = 64

    @property
    def active(self) -> bool:
        return self.action is not GuardAction.OFF or bool(self.values)

    def answer(self, response: dict[str, Any]) -> tuple[dict[str, Any], Verdict | None]:
        return guard_output(self.action, response, self.values) if self.active else (response, None)

    def stream(self) -> ChunkGuard | None:
        return ChunkGuard(self.action, self.values, self.window_chars) if self.active else None


NO_PLAN = OutputPlan()


class OutputGuard:
    def __init__(
        self,
        tenants: TenantLookup,
        publisher: Publisher,
        maps: RestoreMaps | None,
        *,
        window_chars: int,
    ) -> None:
        self._tenants = tenants
        self._publisher = publisher
        self._maps = maps
        self._window_chars = window_chars

    async def plan(self, request: Request) -> OutputPlan:
        """The request's output plan (a Redis error reading the tenant propagates)."""
        if request.kind in UNGUARDED_KINDS or request.internal:
            return NO_PLAN
        tenant = await self._tenants(request.tenant)
        policy = policy_of(tenant.guardrails if tenant else None, request.model)
        values: dict[str, str] = {}
        if policy.restore and self._maps is not None:
            try:
                values = await self._maps.get(request.id)
            except RedisError as exc:
                log.warning("placeholders of %s not restored (%r)", request.id, exc)
        return OutputPlan(policy.output.pii, values, self._window_chars)

    def noted(self, request: Request, verdict: Verdict | None) -> None:
        if verdict is not None:
            noted(verdict, request.tenant, request.id, "pool")

    async def refuse(self, request: Request, verdict: Verdict, usage: UsageEvent) -> None:
        """A blocked answer: audited, its call billed as what it was (an error the provider
        was paid for), and the request ended with 400 `content_policy_violation`."""
        await self._publisher.audit(blocked_entry(request, verdict, "pool"))
        await self._publisher.usage(usage)
        await self._publisher.fail(request, verdict.error())

    async def done(self, request: Request, plan: OutputPlan) -> None:
        """The answer is out: its map is no longer needed (best effort; the TTL ends it)."""
        if plan.values and self._maps is not None:
            try:
                await self._maps.forget(request.id)
            except RedisError as exc:
                log.warning("map of %s not deleted (%r); it expires", request.id, exc)


def output_guard(settings: Settings, redis: RedisClient, publisher: Publisher) -> OutputGuard:
    """The pool's output guard: tenants read through a cache (as the dispatcher reads them),
    the maps of reversible redactions from Redis."""
    tenants: TtlCache[Tenant | None] = TtlCache(
        RedisTenantStore(redis).get, settings.quota.cache_ttl_s
    )
    return OutputGuard(
        tenants.get,
        publisher,
        RestoreMaps(redis, settings.redis.ttl_s),
        window_chars=settings.consumer.guard_window_chars,
    )


class OutputBlocked(Exception):
    """The output guard found a value under `block`: the answer (when it came whole) is
    dropped, a stream stops where it is."""

    def __init__(
        self,
        verdict: Verdict,
        response: dict[str, Any] | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(verdict.guard)
        self.verdict = verdict
        self.response = response
        self.usage = usage
