"""What a call cost: a price table (USD per million tokens) and exact decimal arithmetic.

Shipped defaults in `aibroker/data/prices.yaml`; `AIBROKER_PRICES_FILE` overrides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel

from schemas.openai import Usage

MILLION = Decimal(1_000_000)


class Price(BaseModel):
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None


@dataclass(frozen=True)
class PriceTable:
    prices: dict[str, Price]

    def find(self, provider: str, model: str) -> Price | None:
        return self.prices.get(f"{provider}/{model}") or self.prices.get(model)


def cost(price: Price, usage: Usage) -> Decimal:
    """USD, exact: cached prompt tokens at the cached price where there is one."""
    cached = min(cached_tokens(usage), usage.prompt_tokens)
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    total = (
        (usage.prompt_tokens - cached) * price.input
        + cached * cached_rate
        + usage.completion_tokens * price.output
    )
    return total / MILLION


def cached_tokens(usage: Usage) -> int:
    details = getattr(usage, "prompt_tokens_details", None)
    if isinstance(details, dict):
        return int(details.get("cached_tokens") or 0)
    return 0


def load_prices(override: Path | None) -> PriceTable:
    shipped = resources.files("aibroker").joinpath("data/prices.yaml").read_text()
    table = _parse(shipped)
    if override is not None:
        table |= _parse(override.read_text())
    return PriceTable(table)


def _parse(text: str) -> dict[str, Price]:
    raw = yaml.safe_load(text) or {}
    return {str(name): Price.model_validate(entry) for name, entry in raw.items()}
