"""A target's circuit breaker as a reader sees it: its state, and how a stored state reads at
a given time (`aibroker/stores/breaker.py` keeps them in Redis)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from schemas.envelopes import Target


class State(StrEnum):
    """A target's breaker, as a dispatcher reads it."""

    CLOSED = "closed"
    """Healthy: send work."""
    OPEN = "open"
    """Failing: skip it until the cool-down ends."""
    HALF_OPEN = "half"
    """Cool-down over: one probe request at a time may go; its outcome decides."""


def target_key(target: Target) -> str:
    """The name a target's breaker, backlog and metrics go by: `provider/model`."""
    return f"{target.provider}/{target.model}"


def state_at(stored: str | None, opened: float, now: float, cooldown_s: float) -> State:
    """The state a reader sees: an open breaker whose cool-down is over is half-open."""
    if stored in (State.OPEN, State.HALF_OPEN):
        return State.OPEN if now - opened < cooldown_s else State.HALF_OPEN
    return State.CLOSED


@dataclass(frozen=True)
class Reading:
    """A target's breaker read at one moment: its state, and how many calls on it have failed
    in a row since its last success (every caller's, this one's included)."""

    state: State = State.CLOSED
    failing: int = 0
