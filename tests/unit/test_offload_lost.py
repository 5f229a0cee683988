"""Finding the Anthropic message batch a pool created but never learnt the id of: the earliest
created since the first try, of as many lines, that no batch of ours holds."""

from __future__ import annotations

import pytest

from consumers.offload.anthropic_batches import CLOCK_SKEW_S, Listed, lost_batch

pytestmark = pytest.mark.unit

SINCE = 1_000.0


@pytest.mark.parametrize(
    ("listed", "claimed", "expected"),
    [
        ([], set(), None),
        ([Listed("a", SINCE + 1, 12)], set(), "a"),
        ([Listed("a", SINCE + 1, 11)], set(), None),  # another size: not ours
        ([Listed("a", SINCE + 1, 12)], {"a"}, None),  # held by another batch of ours
        ([Listed("a", SINCE - CLOCK_SKEW_S - 1, 12)], set(), None),  # before we tried
        ([Listed("a", SINCE - CLOCK_SKEW_S + 1, 12)], set(), "a"),  # within the clocks' skew
        ([Listed("b", SINCE + 9, 12), Listed("a", SINCE + 2, 12)], set(), "a"),  # the earliest
        ([Listed("b", SINCE + 9, 12), Listed("a", SINCE + 2, 12)], {"a"}, "b"),
    ],
)
def test_the_lost_batch_is_found(
    listed: list[Listed], claimed: set[str], expected: str | None
) -> None:
    assert lost_batch(listed, since=SINCE, lines=12, claimed=claimed) == expected
