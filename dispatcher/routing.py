"""Where a request goes: its model's route ranked by the route's strategy, targets already
tried or with an open breaker left out, and a target over its backlog spilling to the next.
Pure functions over plain values."""

from __future__ import annotations

from aibroker.errors import BrokerError, InvalidRequest, Unavailable
from aibroker.routes import Route, RouteTable, RouteTarget, resolve
from aibroker.rules.breaker import State, target_key
from dispatcher.health import Health
from dispatcher.policy import Dispatch, Expire, Reject, Wait
from schemas.envelopes import Mode, Request


def rank(route: Route, health: Health, draw: float) -> list[RouteTarget]:
    """The route's targets in the order its strategy prefers them. `draw` is uniform in
    [0, 1), supplied by the caller (`weighted` picks its first target with it)."""
    targets = list(route.targets)
    if route.strategy == "weighted":
        point = draw * sum(t.weight for t in targets)
        for i, target in enumerate(targets):
            point -= target.weight
            if point < 0:
                return [target, *targets[:i], *targets[i + 1 :]]
        return targets
    if route.strategy == "cheapest":
        return sorted(targets, key=lambda t: (t.price is None, t.price or 0))
    if route.strategy == "least_backlog":
        return sorted(targets, key=health.lag)
    return targets


Decision = Dispatch | Reject | Expire | Wait
"""Where a request goes: a target, a wait, or its end."""


def choose_target(
    request: Request,
    routes: RouteTable,
    now: float,
    health: Health | None = None,
    draw: float = 0.0,
) -> Decision:
    """The best target the request has not tried: breakers open are skipped (every one open:
    a sync request gets 503, other work waits out the cool-down); a target over its
    `max_backlog` gives way to the next one that is not."""
    health = health or Health()
    if request.deadline is not None and now >= request.deadline:
        return Expire()
    try:
        route = resolve(request.model, routes, request.kind)
    except BrokerError as exc:
        return Reject(exc)
    tried = {target_key(t) for t in request.tried}
    left = [t for t in rank(route, health, draw) if target_key(t) not in tried]
    if not left:
        return Reject(InvalidRequest(f"every target of '{request.model}' has been tried"))
    usable = [t for t in left if health.state(t) is not State.OPEN]
    if not usable:
        if request.mode is Mode.SYNC:
            message = f"Every target of '{request.model}' is failing; retry shortly."
            return Reject(Unavailable(message, retry_after=health.cooldown_s))
        if request.deadline is not None and now + health.cooldown_s >= request.deadline:
            return Expire()
        return Wait(health.cooldown_s)
    within = [t for t in usable if t.max_backlog is None or health.lag(t) < t.max_backlog]
    chosen = (within or usable)[0]
    return Dispatch(chosen.plain(), probe=health.state(chosen) is State.HALF_OPEN)
