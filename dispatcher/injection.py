"""The prompt-injection guard, in the dispatcher, on every request before it is admitted or
routed (ingress's `guarded` mark covers the PII guard only: this one needs a model, and a
model is a pool, reached through a topic). The heuristics run on the request's user and tool
texts; the classifier's embedding comes from the embeddings pool like the semantic cache's,
under the caller's tenant, and the shipped head (`aibroker/guards/injection_head.json`)
scores it.

When the pool does not answer in time, a `log` policy goes on with the heuristics alone
(fails open); a `block` policy does not let an unchecked request through (fails closed): a
sync request is refused with 503 and Retry-After, async and batch work waits in a delay topic
and is checked again, work whose deadline comes first expires. The metric
`aibroker_guard_unavailable_total{guard, action, outcome}` says which happened."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aibroker.errors import BrokerError, Unavailable
from aibroker.guards.injection import Technique, count, user_texts
from aibroker.guards.injection_head import Head, load_head
from aibroker.guards.policy import GuardAction, Verdict, policy_of
from aibroker.kafka.publisher import Publisher
from aibroker.routes import RouteTable, resolve
from aibroker.settings import Settings
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import RedisRequestStore
from aibroker.stores.tenants import Tenant
from aibroker.telemetry import metrics
from aibroker.telemetry.guardrails import blocked_entry, noted
from dispatcher.health import HealthView
from dispatcher.policy import Expire, Reject, Wait
from dispatcher.semantic_embed import PoolEmbedder
from schemas.envelopes import Kind, Mode, Request, Status
from schemas.terminal import expired_error, terminal
from schemas.vectors import vectors_of
from topics.catalog import TopicNames

log = logging.getLogger(__name__)

TenantLookup = Callable[[str], Awaitable[Tenant | None]]

CLASSIFY_TIMEOUT_S = 3.0
"""How long a request waits for its embedding (tens of ms when the pool is up); past that the
pool counts as down for this request."""
UNCHECKED_WAIT_S = 10.0
"""How long async work that could not be checked waits before it is checked again."""
WINDOW_CHARS, MAX_WINDOWS = 1000, 16
"""The model reads 256 tokens (about 1,000 characters) of a text: longer texts are embedded in
windows, the last `MAX_WINDOWS` of them (the end of a conversation is where an attack acts)."""


class Classifier(Protocol):
    async def score(self, caller: Request, texts: list[str]) -> float | None:
        """The highest score over `texts` less the head's threshold (≥ 0: an injection), or
        None when it cannot be had in time."""
        ...


def windows(texts: list[str]) -> list[str]:
    cut = [t[i : i + WINDOW_CHARS] for t in texts for i in range(0, len(t), WINDOW_CHARS)]
    return cut[-MAX_WINDOWS:]


def when_unchecked(mode: Mode, deadline: float | None, now: float) -> Wait | Reject | Expire:
    """What a `block` policy does with a request the classifier could not check."""
    if mode is Mode.SYNC:
        return Reject(
            Unavailable(
                "The injection guardrail cannot check requests right now; retry shortly.",
                retry_after=2,
            )
        )
    if deadline is not None and now + UNCHECKED_WAIT_S >= deadline:
        return Expire()
    return Wait(UNCHECKED_WAIT_S)


class InjectionGuard:
    def __init__(
        self,
        tenants: TenantLookup,
        publisher: Publisher,
        names: TopicNames,
        classifier: Classifier | None,
    ) -> None:
        self._tenants = tenants
        self._publisher = publisher
        self._names = names
        self._classifier = classifier

    async def check(self, request: Request) -> Request | None:
        """The request unchanged when it may go on; None when it was ended (blocked: 400
        `content_policy_violation`, audited) or held (unchecked, in a delay topic)."""
        tenant = await self._tenants(request.tenant)
        action = policy_of(tenant.guardrails if tenant else None, request.model).input.injection
        texts = user_texts(request.body) if action is not GuardAction.OFF else []
        if not texts:
            return request
        found: Counter[Technique] = count(texts)
        if self._classifier is not None and not (found and action is GuardAction.BLOCK):
            score = await self._classifier.score(request, texts)
            if score is None:
                return await self._unchecked(request, action, found)
            if score >= 0:
                found[Technique.CLASSIFIER] += 1
        return await self._decided(request, Verdict("injection", action, found))

    async def _decided(self, request: Request, verdict: Verdict) -> Request | None:
        noted(verdict, request.tenant, request.id, "dispatcher")
        if not verdict.blocked:
            return request
        await self._publisher.audit(blocked_entry(request, verdict, "dispatcher"))
        await self._publisher.fail(request, verdict.error())
        return None

    async def _unchecked(
        self, request: Request, action: GuardAction, found: Counter[Technique]
    ) -> Request | None:
        """The classifier did not answer: the heuristics' findings decide for `log` (fail
        open); `block` holds or refuses the request (fail closed)."""
        if action is not GuardAction.BLOCK:
            metrics.GUARD_UNAVAILABLE.labels("injection", action.value, "failed_open").inc()
            return await self._decided(request, Verdict("injection", action, found))
        metrics.GUARD_UNAVAILABLE.labels("injection", action.value, "failed_closed").inc()
        step = when_unchecked(request.mode, request.deadline, time.time())
        log.warning("request %s not checked for injection: %s", request.id, type(step).__name__)
        if isinstance(step, Wait):
            lane = self._names.lane(request.priority)
            await self._publisher.delayed(lane, request, request.id, step.delay_s)
        elif isinstance(step, Reject):
            await self._publisher.fail(request, step.error)
        else:
            expired = terminal(request, Status.EXPIRED, error=expired_error())
            await self._publisher.result(expired, request.reply_to)
        return None


class PoolClassifier(PoolEmbedder):
    """The head over the embeddings pool's vectors: all windows in one embeddings request."""

    def __init__(self, head: Head, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, model=head.model, **kwargs)
        self.head = head

    async def score(self, caller: Request, texts: list[str]) -> float | None:
        """The highest score over the texts' windows, as a margin over the head's threshold
        (≥ 0: an injection); None when the pool is down, failed or too slow."""
        now = time.time()
        until = min(caller.deadline or now + CLASSIFY_TIMEOUT_S, now + CLASSIFY_TIMEOUT_S)
        try:
            async with asyncio.timeout(until - now):
                result = await self.embed_all(caller, windows(texts), until)
        except TimeoutError:
            return None
        vectors = vectors_of(result) if result is not None else None
        if not vectors:
            return None
        return max(self.head.score(v) for v in vectors) - self.head.threshold


def injection_guard(
    settings: Settings,
    tenants: TenantLookup,
    publisher: Publisher,
    routes: RouteTable,
    health: HealthView,
    redis: RedisClient,
) -> InjectionGuard:
    """The guard for `aibroker dispatcher`: with the classifier when its embeddings model is
    routed here, else the heuristics alone (said once, at start)."""
    names = TopicNames(settings.kafka.topic_prefix)
    head = load_head()
    try:
        resolve(head.model, routes, Kind.EMBEDDINGS)
    except BrokerError as exc:
        log.warning("injection classifier off (%s): the heuristics run alone", exc.message)
        return InjectionGuard(tenants, publisher, names, None)
    classifier = PoolClassifier(
        head,
        publisher,
        routes,
        names,
        health,
        RedisRequestStore(redis, settings.redis.ttl_s),
        redis,
        redis_timeout_s=settings.redis.request_timeout_s,
    )
    return InjectionGuard(tenants, publisher, names, classifier)
