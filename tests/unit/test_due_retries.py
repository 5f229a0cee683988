"""The dispatcher's decisions about retries against a target that is down, compared whole over
tables of cases: whether a failure's target is known down, what a delayed retry does when it
comes due, and where it goes instead of a down target."""

from __future__ import annotations

import pytest

from aibroker.rules.breaker import State
from dispatcher.policy import (
    AvoidTarget,
    Expire,
    Fallback,
    ProbeTarget,
    SendAnyway,
    SendUnchanged,
    Wait,
    avoid_down_target,
    step_when_due,
    treat_target_as_down,
)
from schemas.envelopes import Mode

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("mode", "probe", "state", "down"),
    [
        (Mode.ASYNC, False, State.CLOSED, False),
        (Mode.ASYNC, True, State.CLOSED, True),  # its own probe failed
        (Mode.ASYNC, False, State.OPEN, True),
        (Mode.BATCH, False, State.HALF_OPEN, True),
        (Mode.SYNC, True, State.OPEN, False),  # a sync caller is answered now, never waits
        (Mode.SYNC, False, State.HALF_OPEN, False),
    ],
)
def test_treat_target_as_down(mode: Mode, probe: bool, state: State, down: bool) -> None:
    assert treat_target_as_down(mode, probe, state) is down


@pytest.mark.parametrize(
    ("state", "step"),
    [
        (State.CLOSED, SendUnchanged()),
        (State.HALF_OPEN, ProbeTarget()),
        (State.OPEN, AvoidTarget()),
    ],
)
def test_step_when_due(state: State, step: object) -> None:
    assert step_when_due(state) == step


NOW = 1000.0


@pytest.mark.parametrize(
    ("can_fall_back", "mode", "deadline", "step"),
    [
        (True, Mode.SYNC, None, Fallback()),
        (True, Mode.ASYNC, NOW - 1, Fallback()),  # another target first, even late
        (False, Mode.SYNC, None, SendAnyway()),
        (False, Mode.SYNC, NOW - 1, SendAnyway()),  # the caller waits: its deadline cuts it
        (False, Mode.ASYNC, None, Wait(30.0)),
        (False, Mode.BATCH, NOW + 5, Wait(30.0)),
        (False, Mode.ASYNC, NOW, Expire()),
        (False, Mode.BATCH, NOW - 1, Expire()),
    ],
)
def test_avoid_down_target(
    can_fall_back: bool, mode: Mode, deadline: float | None, step: object
) -> None:
    assert avoid_down_target(can_fall_back, mode, deadline, NOW, cooldown_s=30.0) == step
