"""The delay topics as a timing wheel: each is read `DELAY_SECONDS` after a record was written,
so its records fall due in the order they were written, and a partition waits, paused, for
its next one (`WorkerConfig.due`) instead of holding records in memory. A record's own due
time may be later than its topic's delay (a topic holds delays up to the next topic's): then
it goes on to the delay topic that fits what is left, and a wait shorter than the shortest
topic is slept out."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord

from aibroker.kafka.publisher import DUE_HEADER
from topics.catalog import DELAY_SECONDS, RETRY_DELAYS, delay_topic

SHORTEST_S = DELAY_SECONDS[RETRY_DELAYS[0]]


def due_at(record: ConsumerRecord[bytes, bytes]) -> float:
    """The record's own due time (Unix seconds) from its header."""
    for name, value in record.headers or ():
        if name == DUE_HEADER:
            return float(value)
    return 0.0  # not a delayed record: due now


def release_at(delay: str, record: ConsumerRecord[bytes, bytes]) -> float:
    """When a record of delay topic `delay` is read: its topic's delay after it was written,
    or its own due time if that is sooner (a delay shorter than the shortest topic)."""
    return min(float(record.timestamp) / 1000 + DELAY_SECONDS[delay], due_at(record))


@dataclass(frozen=True)
class DueNow:
    """On to its destination."""


@dataclass(frozen=True)
class SleepFor:
    """Less is left than the shortest delay topic holds: slept out here."""

    seconds: float


@dataclass(frozen=True)
class WaitInTopic:
    """More is left: on to the delay topic that fits what is left."""

    delay: str
    """The delay topic's name (`1s`, `10s`, …)."""


def delay_step(due: float, now: float) -> DueNow | SleepFor | WaitInTopic:
    """What to do with a delayed record read at `now`."""
    left = due - now
    if left <= 0:
        return DueNow()
    if left < SHORTEST_S:
        return SleepFor(left)
    return WaitInTopic(delay_topic(left))
