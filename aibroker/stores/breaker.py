"""Circuit breakers per target, shared in Redis by every pool (which records each call's
outcome) and every dispatcher (which skips open targets).

`aib:{cb:<topic prefix>}:<provider>/<model>` holds the state: closed (counting calls and
failures in a fixed window), open (since `opened`, for the cool-down), then half-open: one
probe request at a time (`…:probe`, SET NX) decides between closed and open again.
`aib:{cb:<topic prefix>}:targets` lists every target that has a breaker. (The topic prefix
keeps two deployments sharing a Redis apart; the hash tag keeps a deployment's breakers in
one slot of a cluster.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from aibroker.settings import BreakerSettings
from aibroker.stores.redis import RedisClient
from schemas.envelopes import Target

_RECORD = """
local now, ok = tonumber(ARGV[1]), ARGV[2] == '1'
local window, min_calls = tonumber(ARGV[3]), tonumber(ARGV[4])
local rate, cooldown = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('SADD', KEYS[2], ARGV[7])
local h = redis.call('HMGET', KEYS[1], 'state', 'opened', 'ws', 'ok', 'fail')
local state, opened = h[1] or 'closed', tonumber(h[2]) or 0
if state == 'open' then
  if now - opened < cooldown then return state end
  state = 'half'
end
if state == 'half' then
  if ok then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'ws', now, 'ok', 1, 'fail', 0)
    return 'closed'
  end
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened', now)
  return 'opened'
end
local ws, oks, fails = tonumber(h[3]) or now, tonumber(h[4]) or 0, tonumber(h[5]) or 0
if now - ws >= window then ws, oks, fails = now, 0, 0 end
if ok then oks = oks + 1 else fails = fails + 1 end
if oks + fails >= min_calls and fails / (oks + fails) >= rate then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened', now, 'ws', now, 'ok', 0, 'fail', 0)
  return 'opened'
end
redis.call('HSET', KEYS[1], 'state', 'closed', 'ws', ws, 'ok', oks, 'fail', fails)
return 'closed'
"""


class State(StrEnum):
    """A target's breaker, as a dispatcher reads it."""

    CLOSED = "closed"
    """Healthy: send work."""
    OPEN = "open"
    """Failing: skip it until the cool-down ends."""
    HALF_OPEN = "half"
    """Cool-down over: one probe request at a time may go; its outcome decides."""


@dataclass(frozen=True)
class BreakerPolicy:
    window_s: float
    min_calls: int
    failure_rate: float
    cooldown_s: float
    probe_timeout_s: float

    @classmethod
    def of(cls, settings: BreakerSettings) -> BreakerPolicy:
        return cls(
            settings.window_s,
            settings.min_calls,
            settings.failure_rate,
            settings.cooldown_s,
            settings.probe_timeout_s,
        )


def target_key(target: Target) -> str:
    return f"{target.provider}/{target.model}"


def state_at(stored: str | None, opened: float, now: float, cooldown_s: float) -> State:
    """The state a reader sees: an open breaker whose cool-down is over is half-open."""
    if stored in (State.OPEN, State.HALF_OPEN):
        return State.OPEN if now - opened < cooldown_s else State.HALF_OPEN
    return State.CLOSED


class Breakers(Protocol):
    """Circuit breakers per target, shared by every pool and dispatcher."""

    policy: BreakerPolicy

    async def record(self, target: Target, ok: bool, now: float) -> bool:
        """A pool's call on `target` went well (or failed on the provider's side); True when
        this failure opened the breaker."""
        ...

    async def states(self, now: float) -> dict[str, State]:
        """Every known target's state, by `provider/model`."""
        ...

    async def claim_probe(self, target: Target) -> bool:
        """True for the one caller that may send the next probe to a half-open target."""
        ...


class RedisBreakers:
    def __init__(self, redis: RedisClient, policy: BreakerPolicy, namespace: str) -> None:
        self._redis = redis
        self.policy = policy
        self._ns = f"aib:{{cb:{namespace}}}:"
        self._record = redis.register_script(_RECORD)

    async def record(self, target: Target, ok: bool, now: float) -> bool:
        """A pool's call on `target` went well (or failed on the provider's side); True when
        this failure opened the breaker."""
        p = self.policy
        name = target_key(target)
        found = await self._record(
            keys=[f"{self._ns}{name}", f"{self._ns}targets"],
            args=[now, int(ok), p.window_s, p.min_calls, p.failure_rate, p.cooldown_s, name],
        )
        return str(found) == "opened"

    async def states(self, now: float) -> dict[str, State]:
        """Every known target's state, by `provider/model`."""
        names = sorted(str(n) for n in await self._redis.smembers(f"{self._ns}targets"))
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(f"{self._ns}{name}", "state", "opened")
            rows = await pipe.execute()
        return {
            name: state_at(row[0], float(row[1] or 0), now, self.policy.cooldown_s)
            for name, row in zip(names, rows, strict=True)
        }

    async def claim_probe(self, target: Target) -> bool:
        """True for the one caller that may send the next probe to a half-open target."""
        key = f"{self._ns}{target_key(target)}:probe"
        ms = int(self.policy.probe_timeout_s * 1000)
        return bool(await self._redis.set(key, "1", nx=True, px=ms))
