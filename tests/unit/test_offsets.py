import pytest

from aibroker.runtime.offsets import PartitionOffsets

pytestmark = pytest.mark.unit


def test_nothing_fetched_means_nothing_to_commit() -> None:
    assert PartitionOffsets().position() is None


def test_commits_only_the_contiguous_finished_prefix() -> None:
    offsets = PartitionOffsets()
    for offset in range(10, 15):
        offsets.started(offset)
    offsets.finished(11)
    offsets.finished(12)
    assert offsets.position() == 10  # 10 still runs: nothing past it may be committed
    offsets.finished(10)
    assert offsets.position() == 13
    offsets.finished(14)
    assert offsets.position() == 13
    offsets.finished(13)
    assert offsets.position() == 15


def test_position_is_none_once_committed_until_progress() -> None:
    offsets = PartitionOffsets()
    offsets.started(0)
    offsets.finished(0)
    assert offsets.position() == 1
    offsets.committed(1)
    assert offsets.position() is None
    offsets.started(1)
    assert offsets.position() is None  # still 1: in flight
    offsets.finished(1)
    assert offsets.position() == 2


def test_in_flight_counts_started_not_finished() -> None:
    offsets = PartitionOffsets()
    offsets.started(5)
    offsets.started(6)
    offsets.finished(6)
    assert offsets.in_flight == 1
