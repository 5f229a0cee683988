"""The delay topics as a timing wheel: when a record is read, and what is done with it."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord

from aibroker.kafka.publisher import DUE_HEADER
from dispatcher.delays import DueNow, SleepFor, WaitInTopic, delay_step, release_at


def _record(written_s: float, due: float) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="aib.retry.10s",
        partition=0,
        offset=0,
        timestamp=int(written_s * 1000),
        timestamp_type=0,
        key=b"req_1",
        value=b"{}",
        checksum=None,
        serialized_key_size=5,
        serialized_value_size=2,
        headers=[("aib-dest", b"aib.dispatch.mock"), (DUE_HEADER, f"{due:.3f}".encode())],
    )


@pytest.mark.parametrize(
    ("delay", "written", "due", "released"),
    [
        ("10s", 1000.0, 1045.0, 1010.0),  # read after its topic's delay; 35 s still to go
        ("10s", 1000.0, 1010.0, 1010.0),
        ("1s", 1000.0, 1000.2, 1000.2),  # shorter than the shortest topic: its own due time
        ("10m", 1000.0, 5000.0, 1600.0),
    ],
)
def test_a_record_is_read_after_its_topics_delay_or_when_due(
    delay: str, written: float, due: float, released: float
) -> None:
    assert release_at(delay, _record(written, due)) == pytest.approx(released)


@pytest.mark.parametrize(
    ("left", "step"),
    [
        (-3.0, DueNow()),
        (0.0, DueNow()),
        (0.4, SleepFor(0.4)),  # under the shortest topic: slept out
        (1.0, WaitInTopic("1s")),
        (35.0, WaitInTopic("10s")),
        (599.0, WaitInTopic("60s")),
        (7200.0, WaitInTopic("10m")),
    ],
)
def test_what_is_left_of_a_wait_goes_to_the_topic_that_fits(
    left: float, step: DueNow | SleepFor | WaitInTopic
) -> None:
    got = delay_step(1000.0 + left, 1000.0)
    if isinstance(step, SleepFor):
        assert isinstance(got, SleepFor)
        assert got.seconds == pytest.approx(step.seconds)
    else:
        assert got == step
