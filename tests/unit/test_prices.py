from decimal import Decimal
from pathlib import Path

import pytest

from aibroker.prices import Price, PriceTable, cost, load_prices
from schemas.openai import Usage

pytestmark = pytest.mark.unit

PRICE = Price(input=Decimal("2.50"), output=Decimal("10.00"), cached_input=Decimal("1.25"))


def test_cost_is_exact() -> None:
    usage = Usage(prompt_tokens=1234, completion_tokens=567, total_tokens=1801)
    # 1234 * 2.50 + 567 * 10.00 = 3085 + 5670 = 8755 per million
    assert cost(PRICE, usage) == Decimal("0.008755")


def test_cached_prompt_tokens_use_the_cached_price() -> None:
    usage = Usage.model_validate(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 0,
            "total_tokens": 1000,
            "prompt_tokens_details": {"cached_tokens": 400},
        }
    )
    # 600 * 2.50 + 400 * 1.25 = 1500 + 500 = 2000 per million
    assert cost(PRICE, usage) == Decimal("0.002")


def test_without_a_cached_price_cached_tokens_cost_the_input_price() -> None:
    price = Price(input=Decimal("1"), output=Decimal("1"))
    usage = Usage.model_validate(
        {
            "prompt_tokens": 10,
            "completion_tokens": 0,
            "total_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 10},
        }
    )
    assert cost(price, usage) == Decimal("0.00001")


def test_shipped_prices_load_and_an_override_wins(tmp_path: Path) -> None:
    override = tmp_path / "prices.yaml"
    override.write_text(
        'gpt-4o: {input: "1", output: "2"}\nmock/echo: {input: "0.5", output: "0.5"}\n'
    )
    shipped = load_prices(None)
    assert shipped.find("openai", "gpt-4o-mini") is not None
    merged = load_prices(override)
    assert merged.find("openai", "gpt-4o") == Price(input=Decimal(1), output=Decimal(2))
    assert merged.find("mock", "echo") is not None  # provider-specific entry
    assert merged.find("other", "echo") is None
    assert PriceTable({}).find("openai", "gpt-4o") is None  # unknown: no cost, not zero
