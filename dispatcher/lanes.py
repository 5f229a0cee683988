"""Priority between the request lanes: interactive work first, batch work slowed, never
starved. Each lane has its own consumer (a batch backlog never fills the interactive lane's
fetches or slots); this gate makes a batch record wait while interactive records are being
dispatched, for at most `max_wait_s`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class LaneGate:
    def __init__(self, max_wait_s: float) -> None:
        self._max_wait_s = max_wait_s
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def interactive(self) -> Iterator[None]:
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    async def batch_turn(self) -> None:
        """Returns when no interactive record is in flight, or after `max_wait_s`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self._max_wait_s)
