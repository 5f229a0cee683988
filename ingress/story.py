"""A request's story, the pure part: its status document, the provider calls the usage
consumer recorded (`aibroker/stores/story.py`) and its webhook deliveries, told in order as
`GET /admin/v1/requests/{id}/story` answers them.

What it says is derived, never guessed: an attempt is a recorded call; a fallback is a call to
another target than the one before; a wait is the time between one call's end and the next
call's start, and its reasons are the holds the dispatcher recorded in that time (over quota,
a breaker open, a retry's backoff, each spent in a delay topic). A request held now, with no
call since, ends its timeline with a `waiting` step that says why and until when."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from aibroker.ids import created_at
from aibroker.stores.results import RequestState
from schemas.status import status_document


def _target(call: dict[str, Any]) -> str:
    return f"{call['provider']}/{call['model']}"


def _started(call: dict[str, Any]) -> float:
    return float(call["at"]) - float(call["duration_ms"]) / 1000


def attempts_of(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls in the order they started, numbered, each with its target and start."""
    ordered = sorted(calls, key=_started)
    return [
        {"attempt": n, "target": _target(c), "started_at": round(_started(c), 3), **c}
        for n, c in enumerate(ordered, start=1)
    ]


def _reasons(waits: Sequence[dict[str, Any]], after: float | None, before: float) -> list[str]:
    """The holds recorded between two moments, each as `reason` or `reason: detail`."""
    low = float("-inf") if after is None else after
    return [
        f"{w['reason']}: {w['detail']}" if w.get("detail") else str(w["reason"])
        for w in waits
        if low <= float(w["at"]) <= before
    ]


def timeline(
    accepted_at: float | None,
    attempts: list[dict[str, Any]],
    waits: Sequence[dict[str, Any]] = (),
    ended: bool = True,
) -> list[dict[str, Any]]:
    """Accepted, then each attempt, with the wait before it (and why, where the dispatcher
    held it) and a fallback where the target changed; a request not ended that was held
    after its last call ends with `waiting`."""
    steps: list[dict[str, Any]] = []
    if accepted_at is not None:
        steps.append({"at": accepted_at, "step": "accepted"})
    previous_end, previous_target = accepted_at, None
    for a in attempts:
        if previous_end is not None:
            waited_ms = max(0.0, (a["started_at"] - previous_end) * 1000)
            kind = "queued" if previous_target is None else "waited"
            step = {"at": previous_end, "step": kind, "duration_ms": round(waited_ms, 1)}
            if why := _reasons(waits, previous_end, a["started_at"]):
                step["reasons"] = why
            steps.append(step)
        if previous_target is not None and a["target"] != previous_target:
            fallback = {"from": previous_target, "to": a["target"]}
            steps.append({"at": a["started_at"], "step": "fallback", **fallback})
        steps.append({"at": a["started_at"], "step": "attempt", **a})
        previous_end, previous_target = float(a["at"]), a["target"]
    held = [w for w in waits if previous_end is None or float(w["at"]) >= previous_end]
    if not ended and held:
        last = held[-1]
        until = round(float(last["at"]) + float(last["delay_s"]), 3)
        steps.append(
            {
                "at": last["at"],
                "step": "waiting",
                "reasons": _reasons(held, None, float("inf")),
                "until": until,
            }
        )
    return steps


def total_cost(attempts: list[dict[str, Any]]) -> str | None:
    """What the calls cost together (a failed call costs nothing); None when none was priced."""
    costs = [Decimal(a["cost_usd"]) for a in attempts if "cost_usd" in a]
    return str(sum(costs, Decimal(0))) if costs else None


def story_document(
    request_id: str,
    state: RequestState,
    calls: list[dict[str, Any]],
    deliveries: list[dict[str, Any]],
    waits: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    attempts = attempts_of(calls)
    accepted_at = created_at(request_id)
    steps = timeline(accepted_at, attempts, waits, ended=state.result is not None)
    status = status_document(request_id, state.status, state.result)
    if state.result is not None:
        end = {"at": state.result.finished_at, "step": state.status.value}
        if "error" in status:
            end["error"] = status["error"]
        steps.append(end)
    return {
        "object": "request.story",
        "id": request_id,
        "tenant": state.tenant,
        "status": state.status.value,
        "accepted_at": accepted_at,
        "attempts": attempts,
        "fallbacks": sum(1 for s in steps if s["step"] == "fallback"),
        "cost_usd": total_cost(attempts),
        "timeline": steps,
        "webhooks": deliveries,
        "request": status,
    }
