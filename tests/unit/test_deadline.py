"""Deadlines from headers and body: the earliest wins; bad or past values are refused."""

from __future__ import annotations

import pytest

from aibroker.errors import InvalidRequest
from ingress.deadline import request_deadline

pytestmark = pytest.mark.unit
NOW = 1_000.0


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({}, None, None),
        ({"x-aibroker-timeout": "30"}, None, 1_030.0),
        ({"x-aibroker-deadline": "1100"}, None, 1_100.0),
        ({"x-aibroker-deadline": "1100", "x-aibroker-timeout": "5"}, None, 1_005.0),
        ({"x-aibroker-timeout": "500"}, 1_200.0, 1_200.0),
        ({}, 1_200.0, 1_200.0),
    ],
)
def test_the_earliest_deadline_wins(
    headers: dict[str, str], body: float | None, expected: float | None
) -> None:
    assert request_deadline(headers, NOW, body) == expected


@pytest.mark.parametrize(
    ("headers", "body", "param"),
    [
        ({"x-aibroker-timeout": "soon"}, None, "x-aibroker-timeout"),
        ({"x-aibroker-timeout": "nan"}, None, "x-aibroker-timeout"),
        ({"x-aibroker-timeout": "-1"}, None, "x-aibroker-timeout"),
        ({"x-aibroker-deadline": "999"}, None, "x-aibroker-deadline"),
        ({}, 10.0, "deadline"),
    ],
)
def test_bad_or_past_deadlines_are_refused_by_name(
    headers: dict[str, str], body: float | None, param: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        request_deadline(headers, NOW, body)
    assert raised.value.param == param
