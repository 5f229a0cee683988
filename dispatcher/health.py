"""The dispatcher's view of its targets: `Health`, the snapshot routing decides on (breaker
states, topic backlogs), and `HealthView`, which keeps it fresh in the background so that
routing reads memory, never Redis or Kafka, on the hot path."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from aibroker.kafka.lag import LagReader
from aibroker.routes import RouteTable
from aibroker.rules.breaker import State, target_key
from aibroker.stores.breaker import Breakers
from aibroker.telemetry import metrics
from schemas.envelopes import Target
from topics.catalog import TopicNames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    """What the dispatcher last read of its targets."""

    breakers: Mapping[str, State] = field(default_factory=dict)
    """Breaker states by `provider/model`; absent: closed."""
    backlog: Mapping[str, int] = field(default_factory=dict)
    """Consumer lag of each target's topic, by `provider/model` (local models) or by
    `provider` (external providers share one topic)."""
    cooldown_s: float = 15.0
    """How long an open breaker stays open: the wait when every target is open."""

    def state(self, target: Target) -> State:
        return self.breakers.get(target_key(target), State.CLOSED)

    def lag(self, target: Target) -> int:
        return self.backlog.get(target_key(target), self.backlog.get(target.provider, 0))


@dataclass(frozen=True)
class Watched:
    key: str
    """`provider` (external) or `engine/name` (local), as `Health.backlog` is keyed."""
    topic: str
    group: str


def watched_topics(routes: RouteTable, names: TopicNames) -> list[Watched]:
    """Every dispatch topic, when some route weighs backlog; else none (no lag reads)."""
    weighs = any(
        r.strategy == "least_backlog" or any(t.max_backlog is not None for t in r.targets)
        for r in routes.aliases.values()
    )
    if not weighs:
        return []
    return [Watched(key, topic, group) for key, topic, group in routes.pools(names)]


class HealthView:
    def __init__(
        self,
        breakers: Breakers,
        lags: LagReader,
        watched: list[Watched],
        refresh_s: float,
    ) -> None:
        self._breakers = breakers
        self._lags = lags
        self._watched = watched
        self._refresh_s = refresh_s
        self._keys = {w.key for w in watched}
        self._sent: Counter[str] = Counter()
        """Records this dispatcher sent to each watched topic since the current lag read."""
        self.current = Health(cooldown_s=breakers.policy.cooldown_s)

    def dispatched(self, target: Target) -> None:
        """One more record on the target's topic: counted in its backlog at once, so a burst
        between two lag reads cannot overshoot a `max_backlog` (measured: a limit of 20
        reached 100 with the reads alone)."""
        key = target_key(target)
        key = key if key in self._keys else target.provider
        if key not in self._keys:
            return
        self._sent[key] += 1
        backlog = {**self.current.backlog, key: self.current.backlog.get(key, 0) + 1}
        self.current = dataclasses.replace(self.current, backlog=backlog)

    async def refresh(self) -> Health:
        states = await self._breakers.states(time.time())
        self._sent.clear()  # what is sent from here on may be missing from the reading
        backlog = {w.key: await self._lags.lag(w.topic, w.group) for w in self._watched}
        backlog = {key: lag + self._sent[key] for key, lag in backlog.items()}
        self.current = dataclasses.replace(self.current, breakers=states, backlog=backlog)
        for target, now in states.items():
            for state in State:
                metrics.BREAKER_STATE.labels(target, state.value).set(int(state is now))
        return self.current

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh until stopped; a failed read keeps the last view (and says so)."""
        while not stop.is_set():
            try:
                await self.refresh()
            except (RedisError, KafkaError, OSError) as exc:
                log.warning("target health not refreshed (%r); routing on the last view", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._refresh_s)
