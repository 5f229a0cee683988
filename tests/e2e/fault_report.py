"""What clients saw during a fault, as docs/operations/failure-drills.md reports it: async accepts
and refusals, accept latency, how sync calls ended, and how long after the fault ended a
sync call was answered normally again."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from loadtest.history import History


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    def holds(self, at: float) -> bool:
        return self.start <= at <= self.end


def during(history: History, window: Window) -> dict[str, Any]:
    accepts = [a for a in history.accepts if window.holds(a.at)]
    ms = sorted(a.ms for a in accepts if a.accepted)
    sync: Counter[str] = Counter()
    for request_id, sent in history.accepted.items():
        if sent.mode == "sync" and window.holds(sent.at):
            error = history.sync_errors.get(request_id)
            done = history.seen.get(request_id)
            sync[(error or {}).get("code") or ("succeeded" if done else "202")] += 1
    for refusal in history.refused:
        if window.holds(refusal.at) and refusal.token:
            sync[f"refused {refusal.status}"] += 1  # sync and async refusals alike
    return {
        "async_accepted": sum(a.accepted for a in accepts),
        "async_refused": sum(not a.accepted for a in accepts),
        "accept_p50_ms": round(statistics.median(ms), 1) if ms else None,
        "accept_p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1) if ms else None,
        "sync": dict(sorted(sync.items())),
    }


async def recovery_s(client: httpx.AsyncClient, model: str, since: float) -> float:
    """Seconds from `since` until a sync call is answered 200 within 2 s (back to normal)."""
    body = {"model": model, "messages": [{"role": "user", "content": "back?"}]}
    while time.time() - since < 120:
        started = time.monotonic()
        try:
            answer = await client.post("/v1/chat/completions", json=body, timeout=10)
            if answer.status_code == 200 and time.monotonic() - started < 2:
                return round(time.time() - since, 1)
        except httpx.HTTPError:
            pass
    raise AssertionError("sync calls were not back to normal within 120 s")
