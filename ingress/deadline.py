"""A request's deadline from its headers: `X-Aibroker-Deadline` (Unix time) or
`X-Aibroker-Timeout` (seconds from now); with both, or with a body `deadline`, the earliest."""

from __future__ import annotations

import math
from collections.abc import Mapping

from aibroker.errors import InvalidRequest

DEADLINE_HEADER = "x-aibroker-deadline"
TIMEOUT_HEADER = "x-aibroker-timeout"


def request_deadline(
    headers: Mapping[str, str], now: float, body_deadline: float | None = None
) -> float | None:
    """The Unix time after which the request must not run, or None; 400 naming the header
    for a value that is not a number or is already past."""
    found = [] if body_deadline is None else [_future(body_deadline, now, "deadline")]
    if (value := headers.get(DEADLINE_HEADER)) is not None:
        found.append(_future(_number(value, DEADLINE_HEADER), now, DEADLINE_HEADER))
    if (value := headers.get(TIMEOUT_HEADER)) is not None:
        seconds = _number(value, TIMEOUT_HEADER)
        found.append(_future(now + seconds, now, TIMEOUT_HEADER))
    return min(found) if found else None


def _number(value: str, name: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidRequest(f"{name} must be a number of seconds", param=name)
    return number


def _future(when: float, now: float, name: str) -> float:
    if when <= now:
        raise InvalidRequest(f"{name} is already past", param=name)
    return when
