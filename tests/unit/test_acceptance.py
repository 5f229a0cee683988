"""The rule that drops a write Kafka took after ingress had answered 503 for it."""

from __future__ import annotations

import pytest

from aibroker.kafka.acceptance import (
    GIVE_UP_HEADER,
    LOG_APPEND_TIME,
    give_up_header,
    refused_at_ingress,
)

pytestmark = pytest.mark.unit

CREATE_TIME = 0
GAVE_UP = 1_000.0


@pytest.mark.parametrize(
    ("headers", "timestamp_type", "appended", "dropped"),
    [
        ([give_up_header(GAVE_UP)], LOG_APPEND_TIME, GAVE_UP - 2.0, False),  # acknowledged in time
        ([give_up_header(GAVE_UP)], LOG_APPEND_TIME, GAVE_UP + 0.5, False),  # within clock skew
        ([give_up_header(GAVE_UP)], LOG_APPEND_TIME, GAVE_UP + 1.5, True),  # after the 503
        ([give_up_header(GAVE_UP)], LOG_APPEND_TIME, GAVE_UP + 30.0, True),  # broker restarted
        ([give_up_header(GAVE_UP)], CREATE_TIME, GAVE_UP + 30.0, False),  # the producer's time
        ([], LOG_APPEND_TIME, GAVE_UP + 30.0, False),  # not ingress's first write
        ([(GIVE_UP_HEADER, b"soon")], LOG_APPEND_TIME, GAVE_UP + 30.0, False),  # unreadable
        ([("traceparent", b"00-x"), give_up_header(GAVE_UP)], LOG_APPEND_TIME, 2e3, True),
    ],
)
def test_only_a_record_appended_after_ingress_gave_up_is_dropped(
    headers: list[tuple[str, bytes]], timestamp_type: int, appended: float, dropped: bool
) -> None:
    assert refused_at_ingress(headers, timestamp_type, int(appended * 1000)) is dropped
