"""Whether a request goes to its provider's batch API (`dispatch.<provider>.batch`) instead of
being called on demand: a pure choice over the request's lane, attempt and deadline, the
offload policy, the target's API and the price table's batch discount.

    interactive lane                      → on demand (a caller is waiting)
    a retry (attempt > 1)                 → on demand (a provider batch failed it, or it
                                            failed before: finish it now)
    policy `never`                        → on demand
    target API without a batch API        → on demand
    less time left than the completion    → on demand (the pool gives up on a provider batch
    window minus the margin                 `margin` before its first deadline and finishes
                                            its lines on demand: that much must be left)
    policy `auto`, no known discount      → on demand (nothing to save)
    otherwise                             → offload
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from aibroker.prices import Billing, ListedPrice, Price, cost
from aibroker.routes import RouteTable
from aibroker.settings.offload import OffloadPolicy, OffloadSettings
from schemas.openai import Usage
from topics.catalog import TopicNames

BATCH_APIS = frozenset({"openai", "anthropic", "gemini"})
"""The provider APIs (a deployment's `kind`) whose batch API the offload pools speak."""
_PROBE = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, total_tokens=2_000_000)


@dataclass(frozen=True)
class Offload:
    """Send the line to the provider's batch API."""

    discount: Decimal
    """The share of the on-demand price saved (0.5: half price), as far as the table knows."""


@dataclass(frozen=True)
class OnDemand:
    """Call the provider now, as any other request."""

    reason: str
    """Why not offloaded, for logs and the `offload_skipped` metric."""


@dataclass(frozen=True)
class Line:
    """What the choice reads of a request."""

    priority: str
    """`interactive` or `batch`."""
    attempt: int
    deadline: float | None
    tenant: str
    alias: str


def offload_enabled(settings: OffloadSettings) -> bool:
    """Whether any policy (the default, a tenant's, an alias's) lets a line be offloaded: only
    then does the dispatcher consult the choice and `aibroker dev` run the offload pool."""
    policies = {settings.policy, *settings.tenant_policy.values(), *settings.alias_policy.values()}
    return policies != {OffloadPolicy.NEVER}


def policy_for(settings: OffloadSettings, tenant: str, alias: str) -> OffloadPolicy:
    """The alias's policy, else the tenant's, else the default."""
    if alias in settings.alias_policy:
        return settings.alias_policy[alias]
    return settings.tenant_policy.get(tenant, settings.policy)


def batch_discount(price: Price | ListedPrice | None) -> Decimal | None:
    """The share of the on-demand price a batch call saves, for a call of a million tokens in
    and out; None when the model has no price (then nothing is known to be saved)."""
    if price is None:
        return None
    on_demand = cost(price, _PROBE)
    if on_demand <= 0:
        return None
    return 1 - cost(price, _PROBE, Billing(batch=True)) / on_demand


def choose_offload(
    line: Line,
    *,
    api: str | None,
    discount: Decimal | None,
    settings: OffloadSettings,
    now: float,
) -> Offload | OnDemand:
    """See the module docstring: the table, top to bottom, first match wins. `api` is the
    target deployment's kind (None for a local engine), `discount` `batch_discount`'s answer."""
    if line.priority != "batch":
        return OnDemand("interactive")
    if line.attempt > 1:
        return OnDemand("retry")
    policy = policy_for(settings, line.tenant, line.alias)
    if policy is OffloadPolicy.NEVER:
        return OnDemand("policy")
    if api not in BATCH_APIS:
        return OnDemand("no batch API")
    left = None if line.deadline is None else line.deadline - now
    if left is not None and (
        left < settings.completion_window_s - settings.margin_s or left <= settings.margin_s
    ):
        return OnDemand("deadline")
    saved = discount if discount is not None and discount > 0 else Decimal(0)
    if policy is OffloadPolicy.AUTO and saved == 0:
        return OnDemand("no discount")
    return Offload(saved)


def offload_topics(routes: RouteTable, names: TopicNames) -> list[str]:
    """One `dispatch.<provider>.batch` topic per provider deployment with a batch API."""
    return [
        names.dispatch_batch(name)
        for name, provider in sorted(routes.providers.items())
        if provider.kind in BATCH_APIS
    ]
