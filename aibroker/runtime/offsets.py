"""Which offset of a partition may be committed when records finish out of order."""

from __future__ import annotations


class PartitionOffsets:
    """Tracks records of one partition from fetch to finish.

    The committable position is the lowest offset still in flight, or one past the highest
    fetched offset when nothing is in flight: everything before it is done, so a restart
    from there redoes no finished work and skips no unfinished work.
    """

    def __init__(self) -> None:
        self._in_flight: set[int] = set()
        self._next: int | None = None
        self._committed: int | None = None

    def started(self, offset: int) -> None:
        self._in_flight.add(offset)
        if self._next is None or offset >= self._next:
            self._next = offset + 1

    def finished(self, offset: int) -> None:
        self._in_flight.discard(offset)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def done_up_to(self) -> int | None:
        """Every offset below this one is finished (None before the first record)."""
        if self._next is None:
            return None
        return min(self._in_flight) if self._in_flight else self._next

    def position(self) -> int | None:
        """The offset to commit now, or None when there is nothing new to commit."""
        if self._next is None:
            return None
        pos = self.done_up_to()
        return None if pos == self._committed else pos

    def committed(self, position: int) -> None:
        self._committed = position
