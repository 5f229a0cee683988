"""What a keeper of the view does next, decided from plain values: the view's marker (the next
offset of the config topic it needs; None when it has none) against what the keeper has read."""

from __future__ import annotations

START = -1
"""Read the log from its first record: the view is empty."""


def replay_from(marker: int | None, expected: int) -> int | None:
    """Where to read the log again, or None to go on. `expected` is the next offset the view
    needs given what this keeper has applied: a view without a marker lost everything (a flush,
    a restart without persistence); one whose marker is below `expected` lost a tail (a
    failover to a replica that had not caught up). A marker past `expected` is another keeper
    ahead of this one: this one will find those records applied."""
    if marker is None:
        return START
    if marker < expected:
        return marker
    return None


def next_read_from(read_from: int, offset: int) -> int:
    """The offset from which a keeper has read every record, once it has handled the record at
    `offset`. Reading from the log's start, the first record pins it: the view may lack a
    marker only before that record is applied, so a view found empty after it was lost anew."""
    return offset if read_from == START else read_from
