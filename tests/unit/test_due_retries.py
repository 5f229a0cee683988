"""The dispatcher's decisions about retries against a target that is down, compared whole over
tables of cases: whether a failure's target is known down, what a delayed retry does when it
comes due, and where it goes around a down target."""

from __future__ import annotations

import pytest

from aibroker.stores.breaker import State
from dispatcher.policy import (
    Expire,
    Fallback,
    GoAround,
    ProbeFirst,
    SendAnyway,
    SendOn,
    Wait,
    around,
    known_down,
    when_due,
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
def test_known_down(mode: Mode, probe: bool, state: State, down: bool) -> None:
    assert known_down(mode, probe, state) is down


@pytest.mark.parametrize(
    ("state", "step"),
    [
        (State.CLOSED, SendOn()),
        (State.HALF_OPEN, ProbeFirst()),
        (State.OPEN, GoAround()),
    ],
)
def test_when_due(state: State, step: object) -> None:
    assert when_due(state) == step


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
def test_around(can_fall_back: bool, mode: Mode, deadline: float | None, step: object) -> None:
    assert around(can_fall_back, mode, deadline, NOW, cooldown_s=30.0) == step
