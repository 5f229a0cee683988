"""Redis that hangs must cost a request milliseconds, not seconds: every command runs under a
deadline sized to the path that waits on it, and a breaker in each process treats Redis as
down after a few failures in a row, so calls go straight to their degraded path for a short
cool-down instead of each waiting out its deadline. Then one call at a time probes it.

Both raise `RedisUnavailable`, a `RedisError`: every caller's degraded path for "Redis down"
(connection refused) serves "Redis hung" too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from enum import StrEnum
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from aibroker.telemetry import metrics

T = TypeVar("T")

DEADLINE_S: ContextVar[float | None] = ContextVar("redis_deadline_s", default=None)
"""The deadline of the Redis calls made in this context (None: the client's default)."""

FAILURES = (TimeoutError, RedisConnectionError, RedisTimeoutError, OSError)
"""What says Redis is not answering; an error Redis answered with (a script error) does not."""


class RedisUnavailable(RedisError):
    """Redis did not answer within the deadline, or its breaker is open."""


class Breaker(StrEnum):
    CLOSED = "closed"
    """Calls go to Redis."""
    OPEN = "open"
    """Calls fail at once until the cool-down ends."""
    PROBING = "probing"
    """One call is finding out whether Redis is back; the others fail at once."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Redis calls made inside get this deadline (e.g. a start-up seed, slower than a request)."""
    token = DEADLINE_S.set(seconds)
    try:
        yield
    finally:
        DEADLINE_S.reset(token)


class RedisGuard:
    def __init__(
        self,
        default_deadline_s: float,
        *,
        failures_to_open: int = 3,
        cooldown_s: float = 2.0,
        concurrency: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default_deadline_s = default_deadline_s
        self._slots = asyncio.Semaphore(concurrency) if concurrency else None
        """At most this many calls at a time (waiting for one counts against the deadline)."""
        self._failures_to_open = failures_to_open
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> Breaker:
        if self._probing:
            return Breaker.PROBING
        return Breaker.CLOSED if self._opened_at is None else Breaker.OPEN

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()` under the deadline of this context, unless the breaker says Redis is down."""
        probe = self._admit()
        limit = DEADLINE_S.get() or self.default_deadline_s
        try:
            async with asyncio.timeout(limit):
                if self._slots is None:
                    result = await call()
                else:
                    async with self._slots:
                        result = await call()
        except FAILURES as exc:
            self._failed(probe)
            raise RedisUnavailable(f"Redis did not answer within {limit:.3f}s ({exc!r})") from exc
        except asyncio.CancelledError:
            self._probing = False if probe else self._probing  # the next call probes instead
            raise
        except BaseException:
            self._closed()  # Redis answered (with an error): it is up
            raise
        self._closed()
        return result

    def _admit(self) -> bool:
        """Whether this call may go to Redis (and is the probe); raises if it may not."""
        if self._opened_at is None:
            return False
        if self._probing or self._clock() - self._opened_at < self._cooldown_s:
            metrics.REDIS_FAST_FAILS.inc()
            raise RedisUnavailable("Redis is treated as down (its breaker is open)")
        self._probing = True
        return True

    def _failed(self, probe: bool) -> None:
        self._probing = False if probe else self._probing
        self._failures += 1
        if probe or self._failures >= self._failures_to_open:
            if self._opened_at is None:
                metrics.REDIS_BREAKER_OPENED.inc()
            self._opened_at = self._clock()
            metrics.REDIS_BREAKER_OPEN.set(1)

    def _closed(self) -> None:
        self._failures = 0
        self._probing = False
        if self._opened_at is not None:
            self._opened_at = None
            metrics.REDIS_BREAKER_OPEN.set(0)
