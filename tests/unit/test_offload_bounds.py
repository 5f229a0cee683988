"""How an offload pool cuts waiting lines into provider batches (lines, bytes, age) and how it
backs off between polls."""

from __future__ import annotations

import pytest

from consumers.offload.bounds import Limits, due, give_up_at, next_poll_delay, take

pytestmark = pytest.mark.unit

LIMITS = Limits(max_lines=3, max_bytes=100, max_age_s=10.0, poll_min_s=5.0, poll_max_s=60.0)


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([10, 10, 10, 10], 3),  # the line bound
        ([40, 40, 40], 2),  # the byte bound: the third would pass 100
        ([60, 40, 1], 2),  # exactly 100 fits
        ([500, 10], 1),  # a line over the byte bound goes alone
        ([10], 1),
        ([], 0),
    ],
)
def test_take_fills_a_batch_to_its_bounds(sizes: list[int], expected: int) -> None:
    assert take(sizes, LIMITS) == expected


@pytest.mark.parametrize(
    ("sizes", "oldest_at", "now", "expected"),
    [
        ([], None, 100.0, False),  # nothing waits
        ([10], 95.0, 100.0, False),  # young and small: keep gathering
        ([10], 90.0, 100.0, True),  # the oldest line waited max_age_s
        ([10, 10, 10], 99.0, 100.0, True),  # full by lines
        ([60, 50], 99.0, 100.0, True),  # full by bytes
    ],
)
def test_due(sizes: list[int], oldest_at: float | None, now: float, expected: bool) -> None:
    assert due(sizes, oldest_at, now, LIMITS) is expected


def test_poll_backoff_doubles_up_to_its_ceiling() -> None:
    delays = [next_poll_delay(None, LIMITS)]
    for _ in range(6):
        delays.append(next_poll_delay(delays[-1], LIMITS))
    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert next_poll_delay(0.1, LIMITS) == 5.0  # never under the floor


def test_a_batch_is_given_up_a_margin_before_its_first_deadline() -> None:
    assert give_up_at([500.0, None, 300.0], margin_s=100.0) == 200.0
    assert give_up_at([None, None], margin_s=100.0) is None
