"""The dispatcher's decisions about retries against a target that is down, compared whole over
tables of cases: whose a failure is (the request's or its target's), what a delayed retry does
when it comes due, and where it goes instead of a down target."""

from __future__ import annotations

import pytest

from aibroker.rules.breaker import Reading, State
from dispatcher.policy import (
    AvoidTarget,
    Blame,
    Expire,
    Fallback,
    ProbeTarget,
    SendAnyway,
    SendUnchanged,
    Wait,
    avoid_down_target,
    blame,
    step_when_due,
)
from schemas.envelopes import Mode

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("mode", "probe", "state", "failing", "target_attempt", "fault"),
    [
        (Mode.ASYNC, False, State.CLOSED, 1, 1, Blame.REQUEST),  # only its own failure
        (Mode.ASYNC, False, State.CLOSED, 3, 3, Blame.REQUEST),  # its 3, alone on the target
        (Mode.BATCH, False, State.CLOSED, 1, 3, Blame.REQUEST),  # others succeeded meanwhile
        (Mode.ASYNC, False, State.CLOSED, 0, 2, Blame.REQUEST),  # not recorded (Redis was down)
        (Mode.ASYNC, False, State.CLOSED, 2, 1, Blame.TARGET),  # another call failed too
        (Mode.BATCH, False, State.CLOSED, 9, 4, Blame.TARGET),  # about to open: not its fault
        (Mode.ASYNC, True, State.CLOSED, 1, 1, Blame.DOWN),  # its own probe failed
        (Mode.ASYNC, False, State.OPEN, 1, 1, Blame.DOWN),  # the failure that opened it
        (Mode.BATCH, False, State.HALF_OPEN, 0, 4, Blame.DOWN),
        (Mode.SYNC, True, State.OPEN, 20, 1, Blame.REQUEST),  # a sync caller never waits
        (Mode.SYNC, False, State.CLOSED, 5, 1, Blame.REQUEST),
    ],
)
def test_blame(
    mode: Mode, probe: bool, state: State, failing: int, target_attempt: int, fault: Blame
) -> None:
    assert blame(mode, probe, Reading(state, failing), target_attempt) is fault


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
