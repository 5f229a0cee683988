"""What a call cost, in exact decimals: the maintained `genai-prices` data by default, a YAML
table (`AIBROKER_PRICES_FILE`, USD per million tokens) over it for the models it lists.

genai-prices knows cache reads and writes, long-context tiers, batch and service-tier prices,
and keeps up with the providers' list prices; a hand-kept table did not. Only its bundled data
is read: its `UpdatePrices` (its one path to the network) is never started, so a call's price
depends on the installed version alone, and upgrading the package is how prices move.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from genai_prices import Usage as ListedUsage
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo, Provider, TieredPrices
from pydantic import BaseModel, ConfigDict, Field

from aibroker.ids import new_id
from schemas.envelopes import Request, Target, UsageEvent
from schemas.openai import Usage

MILLION = Decimal(1_000_000)
LISTED_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
"""The genai-prices provider of each API we speak, for a deployment under a name of its own
(`mock`, `claude`): an OpenAI-compatible one is priced as OpenAI."""


class Rates(BaseModel):
    """USD per million tokens; a cache read or write without a rate costs the input rate."""

    model_config = ConfigDict(extra="forbid")  # a misspelt rate would bill at the input rate

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write_input: Decimal | None = None


class Tier(Rates):
    """Rates for a call whose prompt is longer than `above` tokens: they apply to all its
    tokens, as Gemini and Anthropic bill long contexts."""

    above: int = Field(ge=0)


class Price(Rates):
    """One model's entry in a YAML table: base rates and any long-context tiers."""

    tiers: list[Tier] = Field(default_factory=list)

    def rates(self, prompt_tokens: int) -> Rates:
        """The rates of a call with this many prompt tokens: its highest tier passed."""
        passed = [t for t in self.tiers if prompt_tokens > t.above]
        return max(passed, key=lambda t: t.above) if passed else self


@dataclass(frozen=True)
class ListedPrice:
    """A model in genai-prices' bundled data, at one of its providers."""

    provider: Provider
    model: ModelInfo

    @property
    def input(self) -> Decimal:
        """Today's base input rate per million tokens (what routing by price weighs)."""
        return _base(self.model.get_prices(datetime.now(UTC)).input_mtok)

    @property
    def output(self) -> Decimal:
        return _base(self.model.get_prices(datetime.now(UTC)).output_mtok)


def _base(rate: Decimal | TieredPrices | None) -> Decimal:
    if isinstance(rate, TieredPrices):
        return rate.base
    return rate or Decimal(0)


@dataclass(frozen=True)
class Billing:
    """How the provider billed a call, besides its tokens."""

    batch: bool = False
    """The call went through the provider's batch API (half price at most providers). A line
    of one of our batches is an ordinary call: only a provider batch offload sets this."""
    service_tier: str | None = None
    """The tier the provider says it served (OpenAI's `service_tier`: `flex`, `priority`)."""
    at: float | None = None
    """When the call ran (Unix time; None: now): listed prices change on dates."""

    @classmethod
    def of(cls, response: Mapping[str, Any], *, at: float | None = None) -> Billing:
        """What a provider's answer says about its billing."""
        tier = response.get("service_tier")
        return cls(service_tier=tier if isinstance(tier, str) else None, at=at)

    def context(self) -> dict[str, str]:
        """genai-prices' price context: the variants of a model's prices that apply."""
        context = {"processing": "batch"} if self.batch else {}
        if self.service_tier:
            context["service_tier"] = self.service_tier
        return context


STANDARD = Billing()


@dataclass(frozen=True)
class Tokens:
    """A call's tokens as billed: cache reads and writes are part of the prompt."""

    prompt: int
    cache_read: int
    cache_write: int
    completion: int

    @classmethod
    def of(cls, usage: Usage) -> Tokens:
        """Clamped so that reads and writes never exceed the prompt they are part of."""
        prompt = max(usage.prompt_tokens, 0)
        read = min(max(cached_tokens(usage), 0), prompt)
        write = min(max(cache_write_tokens(usage), 0), prompt - read)
        return cls(prompt, read, write, max(usage.completion_tokens, 0))


def cost(price: Price | ListedPrice, usage: Usage, billing: Billing = STANDARD) -> Decimal:
    """USD, exact. A YAML price is what it says (its tiers included); a listed one is
    genai-prices' calculation, with the batch and service-tier variants `billing` names."""
    tokens = Tokens.of(usage)
    if isinstance(price, ListedPrice):
        return _listed_cost(price, tokens, billing)
    rates = price.rates(tokens.prompt)
    read_rate = rates.input if rates.cached_input is None else rates.cached_input
    write_rate = rates.input if rates.cache_write_input is None else rates.cache_write_input
    total = (
        (tokens.prompt - tokens.cache_read - tokens.cache_write) * rates.input
        + tokens.cache_read * read_rate
        + tokens.cache_write * write_rate
        + tokens.completion * rates.output
    )
    return total / MILLION


def _listed_cost(price: ListedPrice, tokens: Tokens, billing: Billing) -> Decimal:
    usage = ListedUsage(
        input_tokens=tokens.prompt,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
        output_tokens=tokens.completion,
    )
    at = datetime.now(UTC) if billing.at is None else datetime.fromtimestamp(billing.at, UTC)
    calculated = price.model.calc_price(
        usage, price.provider, genai_request_timestamp=at, price_context=billing.context()
    )
    return calculated.total_price


def cached_tokens(usage: Usage) -> int:
    """Prompt tokens read from the provider's cache (`prompt_tokens_details.cached_tokens`)."""
    return _prompt_detail(usage, "cached_tokens")


def cache_write_tokens(usage: Usage) -> int:
    """Prompt tokens written to the provider's cache (`prompt_tokens_details.cache_write_tokens`,
    as OpenRouter names it; Anthropic's `cache_creation_input_tokens`)."""
    return _prompt_detail(usage, "cache_write_tokens")


def _prompt_detail(usage: Usage, name: str) -> int:
    details = getattr(usage, "prompt_tokens_details", None)
    if isinstance(details, dict):
        return int(details.get(name) or 0)
    return 0


@dataclass(frozen=True)
class PriceTable:
    """The YAML entries (keys: a model, or `<provider>/<model>` for one provider's price),
    then genai-prices for the external providers named in `providers` (name → its API:
    `openai`, `anthropic`, `gemini`). A local engine is never one of them: its models cost
    what the YAML says, or nothing known."""

    prices: dict[str, Price]
    providers: Mapping[str, str] = field(default_factory=dict)

    def find(self, provider: str, model: str) -> Price | ListedPrice | None:
        entry = self.prices.get(f"{provider}/{model}") or self.prices.get(model)
        if entry is not None:
            return entry
        api = self.providers.get(provider)
        return _listed(provider, model, api) if api is not None else None


def _listed(provider: str, model: str, api: str) -> ListedPrice | None:
    """The model at the genai-prices provider of that name, else at the one of its API."""
    snapshot = get_snapshot()
    for name in (provider, LISTED_PROVIDER.get(api)):
        if name is None:
            continue
        try:
            found = snapshot.find_provider(None, name, None)
        except LookupError:
            continue
        info = found.find_model(model, all_providers=snapshot.providers)
        return ListedPrice(found, info) if info is not None else None
    return None


def load_prices(override: Path | None, providers: Mapping[str, str] | None = None) -> PriceTable:
    """The table of `AIBROKER_PRICES_FILE` (if any) over genai-prices for `providers`."""
    table = _parse(override.read_text()) if override is not None else {}
    return PriceTable(table, dict(providers or {}))


def _parse(text: str) -> dict[str, Price]:
    raw = yaml.safe_load(text) or {}
    return {str(name): Price.model_validate(entry) for name, entry in raw.items()}


def usage_event(request: Request, target: Target, usage: Usage | None, **fields: Any) -> UsageEvent:
    """The usage event of one call of `request` to `target`: who asked, what served it, its
    tokens (none without `usage`), stamped now. `fields` set the rest and win over these
    defaults: `cost_usd`, `latency_ms`, a status, marks such as `cached` or `provider_batch`,
    an `id` of the caller's (one per line, billed once however often it is sent)."""
    made: dict[str, Any] = {
        "id": new_id("use"),
        "request_id": request.id,
        "tenant": request.tenant,
        "key_id": request.key_id,
        "user": request.user,
        "model": request.model,
        "provider": target.provider,
        "upstream_model": target.model,
        "prompt_tokens": usage.prompt_tokens if usage else 0,
        "completion_tokens": usage.completion_tokens if usage else 0,
        "cached_tokens": cached_tokens(usage) if usage else 0,
        "at": time.time(),
    }
    return UsageEvent.model_validate(made | fields)
