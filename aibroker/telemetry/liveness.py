"""Liveness of a worker process: each worker's poll loop beats once per turn; the metrics port
answers `/health/live` from those beats, so a wedged loop fails its probe even though the
metrics thread would keep answering."""

from __future__ import annotations

import threading
import time

MAX_SILENCE_S = 60.0
"""A poll loop that has not turned for this long is wedged (a turn is 0.1 s when idle)."""


class Heartbeats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beats: dict[str, float] = {}

    def beat(self, name: str) -> None:
        self._beats[name] = time.monotonic()  # one store: atomic under the GIL

    def forget(self, name: str) -> None:
        with self._lock:
            self._beats.pop(name, None)

    def silent(self, max_silence_s: float = MAX_SILENCE_S) -> list[str]:
        """The loops that have not beaten within `max_silence_s` (none: alive)."""
        now = time.monotonic()
        with self._lock:
            beats = dict(self._beats)
        return sorted(name for name, at in beats.items() if now - at > max_silence_s)


HEARTBEATS = Heartbeats()
"""This process's poll loops (a process without any, ingress, is alive while it serves)."""
