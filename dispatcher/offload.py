"""The dispatcher's offload choice bound to its settings, deployments and price table: which
topic a routed request goes to (`aibroker/rules/offload.py` decides)."""

from __future__ import annotations

from decimal import Decimal

from aibroker.prices import PriceTable, load_prices
from aibroker.routes import RouteTable
from aibroker.rules.offload import (
    Line,
    Offload,
    OnDemand,
    batch_discount,
    choose_offload,
    offload_enabled,
)
from aibroker.settings import Settings
from aibroker.settings.offload import OffloadSettings
from schemas.envelopes import Request, Target


class OffloadRouter:
    """Reads what the choice needs of a request; keeps each target's discount (a price
    lookup per request would cost more than the routing itself)."""

    def __init__(self, settings: OffloadSettings, routes: RouteTable, prices: PriceTable) -> None:
        self.settings = settings
        self.routes = routes
        self.prices = prices
        self._discounts: dict[tuple[str, str], Decimal | None] = {}

    def choose(self, request: Request, target: Target, now: float) -> Offload | OnDemand:
        provider = self.routes.providers.get(target.provider)
        line = Line(
            priority=request.priority,
            attempt=request.attempt,
            deadline=request.deadline,
            tenant=request.tenant,
            alias=request.model,
        )
        return choose_offload(
            line,
            api=provider.kind if provider is not None else None,
            discount=self._discount(target),
            settings=self.settings,
            now=now,
        )

    def _discount(self, target: Target) -> Decimal | None:
        key = (target.provider, target.model)
        if key not in self._discounts:
            self._discounts[key] = batch_discount(self.prices.find(*key))
        return self._discounts[key]


def offload_router(settings: Settings, routes: RouteTable) -> OffloadRouter | None:
    """The router the dispatcher consults; None while no policy anywhere allows offload (every
    request then goes to its dispatch topic as before)."""
    if not offload_enabled(settings.offload):
        return None
    kinds = {name: provider.kind for name, provider in routes.providers.items()}
    return OffloadRouter(settings.offload, routes, load_prices(settings.prices_file, kinds))
