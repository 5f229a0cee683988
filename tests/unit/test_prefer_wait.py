"""`sync_wait_s`: how long a sync caller waits, from its `Prefer` header and the limit."""

from __future__ import annotations

import pytest

from ingress.prefer import Preferences, sync_wait_s

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("prefer", "expected"),
    [
        (Preferences(), 30.0),  # no preference: the limit
        (Preferences(wait_s=5.0), 5.0),
        (Preferences(wait_s=0.0), 30.0),  # wait=0 (or below): the limit, never no wait
        (Preferences(wait_s=90.0), 30.0),  # bounded by the limit
        (Preferences(respond_async=True), None),  # 202 at once
        (Preferences(respond_async=True, wait_s=5.0), None),
    ],
)
def test_sync_wait(prefer: Preferences, expected: float | None) -> None:
    assert sync_wait_s(prefer, 30.0) == expected
