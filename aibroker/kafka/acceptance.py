"""When ingress refused a write that Kafka took later: the time ingress gives up on a request's
write travels in a header of that record, and the rule below drops a record the broker
appended after it (the client was told 503, so the request must not run).

aiokafka's idempotent producer never drops a batch: a write that outlives ingress's wait (the
broker down, a leader being elected) is still appended once the broker is back. Only ingress's
own first write carries the header; records sent on (delay topics, DLQ replay) get fresh
headers, so waiting work is never mistaken for it. The requests topics take the broker's append
time (`message.timestamp.type=LogAppendTime`); on a broker that keeps the producer's time
instead (Tansu), the rule never applies.
"""

from __future__ import annotations

from collections.abc import Sequence

GIVE_UP_HEADER = "aib-give-up"
"""Unix time at which ingress stops waiting for this write and answers 503."""
CLOCK_SKEW_S = 1.0
"""How far the broker's clock may run ahead of ingress's. An acknowledged write is appended
before ingress gives up, so only a record appended later than this margin is dropped."""
LOG_APPEND_TIME = 1
"""A record's `timestamp_type` when its timestamp is the broker's append time."""


def give_up_header(at: float) -> tuple[str, bytes]:
    return GIVE_UP_HEADER, f"{at:.3f}".encode()


def refused_at_ingress(
    headers: Sequence[tuple[str, bytes]],
    timestamp_type: int,
    timestamp_ms: int,
    *,
    skew_s: float = CLOCK_SKEW_S,
) -> bool:
    """True when the broker appended this record after ingress had given up on it."""
    if timestamp_type != LOG_APPEND_TIME:
        return False
    raw = next((value for key, value in headers if key == GIVE_UP_HEADER), None)
    if raw is None:
        return False
    try:
        give_up = float(raw)
    except ValueError:
        return False
    return timestamp_ms / 1000 > give_up + skew_s
