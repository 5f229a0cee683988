"""Circuit breakers per target, shared in Redis by every pool (which records each call's
outcome) and every dispatcher (which skips open targets).

`aib:{cb:<topic prefix>}:<provider>/<model>` holds the state: closed (counting calls and
failures in a fixed window, and the failures in a row since the last success), open (since
`opened`, for the cool-down), then half-open: one probe request at a time (`…:probe`, SET NX)
decides between closed and open again. A closed breaker opens when the window's failure rate
reaches the limit over at least `min_calls` calls, or when the last `min_calls` calls all
failed: a window that began with healthy traffic would otherwise dilute an outage's failures
until it ends (measured: 43 successes before a hard outage held the breaker closed for 4.1 s,
while requests spent their attempts).
`aib:{cb:<topic prefix>}:targets` lists every target that has a breaker. (The topic prefix
keeps two deployments sharing a Redis apart; the hash tag keeps a deployment's breakers in
one slot of a cluster.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aibroker.rules.breaker import Reading, State, state_at, target_key
from aibroker.settings import BreakerSettings
from aibroker.stores.redis import RedisClient
from schemas.envelopes import Target

# Record one call's outcome on a target's breaker.
#   KEYS[1]  the target's breaker, a hash: `state` (closed, open, half), `opened` (when it
#            opened), `ws` (when the counting window started), `ok` and `fail` (calls in it),
#            `failing` (calls failed in a row since the last success, in any state)
#   KEYS[2]  the set of every target that has a breaker
#   ARGV[1]  now (Unix seconds)
#   ARGV[2]  '1' the call went well, '0' it failed on the provider's side
#   ARGV[3]  the counting window (s)      ARGV[4]  the calls a window needs before it can open
#   ARGV[5]  the failure rate that opens  ARGV[6]  the cool-down (s)
#   ARGV[7]  the target, `provider/model` (its name in KEYS[2])
# Returns 'opened' when this call opened the breaker, else the state it leaves: 'closed' or
# 'open' (an open breaker within its cool-down counts nothing but `failing`).
_RECORD = """
local breaker, targets = KEYS[1], KEYS[2]
local now, ok = tonumber(ARGV[1]), ARGV[2] == '1'
local window, min_calls = tonumber(ARGV[3]), tonumber(ARGV[4])
local rate, cooldown = tonumber(ARGV[5]), tonumber(ARGV[6])
local target = ARGV[7]
redis.call('SADD', targets, target)
local h = redis.call('HMGET', breaker, 'state', 'opened', 'ws', 'ok', 'fail', 'failing')
local state, opened = h[1] or 'closed', tonumber(h[2]) or 0
local failing = 0
if not ok then failing = (tonumber(h[6]) or 0) + 1 end
redis.call('HSET', breaker, 'failing', failing)
if state == 'open' then
  if now - opened < cooldown then return state end
  state = 'half'
end
if state == 'half' then
  if ok then
    redis.call('HSET', breaker, 'state', 'closed', 'ws', now, 'ok', 1, 'fail', 0)
    return 'closed'
  end
  redis.call('HSET', breaker, 'state', 'open', 'opened', now)
  return 'opened'
end
local ws, oks, fails = tonumber(h[3]) or now, tonumber(h[4]) or 0, tonumber(h[5]) or 0
if now - ws >= window then ws, oks, fails = now, 0, 0 end
if ok then oks = oks + 1 else fails = fails + 1 end
local over_rate = oks + fails >= min_calls and fails / (oks + fails) >= rate
if over_rate or failing >= min_calls then
  redis.call('HSET', breaker, 'state', 'open', 'opened', now, 'ws', now, 'ok', 0, 'fail', 0)
  return 'opened'
end
redis.call('HSET', breaker, 'state', 'closed', 'ws', ws, 'ok', oks, 'fail', fails)
return 'closed'
"""


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

    async def read(self, target: Target, now: float) -> Reading:
        """`target`'s breaker as it is now (what a decision on one of its failures needs)."""
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

    async def read(self, target: Target, now: float) -> Reading:
        """`target`'s breaker as it is now (what a decision on one of its failures needs)."""
        key = f"{self._ns}{target_key(target)}"
        stored, opened, failing = await self._redis.hmget(key, "state", "opened", "failing")
        state = state_at(
            str(stored) if stored else None, float(opened or 0), now, self.policy.cooldown_s
        )
        return Reading(state, int(failing or 0))

    async def claim_probe(self, target: Target) -> bool:
        """True for the one caller that may send the next probe to a half-open target."""
        key = f"{self._ns}{target_key(target)}:probe"
        ms = int(self.policy.probe_timeout_s * 1000)
        return bool(await self._redis.set(key, "1", nx=True, px=ms))
