from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from aibroker.prices import Billing, ListedPrice, Price, PriceTable, cost, load_prices
from consumers.providers.anthropic.wire import usage as anthropic_usage
from consumers.providers.gemini.wire import usage as gemini_usage
from schemas.openai import Usage

pytestmark = pytest.mark.unit

PRICE = Price(input=Decimal("2.50"), output=Decimal("10.00"), cached_input=Decimal("1.25"))
AT = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
"""The day the pinned list prices held (genai-prices keeps each price's start date)."""
STANDARD_AT = Billing(at=AT)
PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}
MAINTAINED = load_prices(None, PROVIDERS | {"mock": "openai", "claude": "anthropic"})


def usage(prompt: int, completion: int, cached: int = 0, written: int = 0) -> Usage:
    details = {"cached_tokens": cached, "cache_write_tokens": written}
    return Usage.model_validate(
        {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": details,
        }
    )


def listed(provider: str, model: str) -> ListedPrice:
    price = MAINTAINED.find(provider, model)
    assert isinstance(price, ListedPrice), f"{provider}/{model} is not in genai-prices"
    return price


def test_a_table_price_is_exact() -> None:
    # 1234 * 2.50 + 567 * 10.00 = 3085 + 5670 = 8755 per million
    assert cost(PRICE, usage(1234, 567)) == Decimal("0.008755")


def test_cached_prompt_tokens_use_the_cached_price() -> None:
    # 600 * 2.50 + 400 * 1.25 = 1500 + 500 = 2000 per million
    assert cost(PRICE, usage(1000, 0, cached=400)) == Decimal("0.002")


def test_cache_reads_and_writes_without_their_own_rate_cost_the_input_rate() -> None:
    price = Price(input=Decimal("1"), output=Decimal("1"))
    assert cost(price, usage(10, 0, cached=4, written=6)) == Decimal("0.00001")


def test_cache_writes_cost_their_rate_in_a_table() -> None:
    price = Price(input=Decimal(3), output=Decimal(15), cache_write_input=Decimal("3.75"))
    # 1000 plain * 3 + 1000 written * 3.75 = 6750 per million
    assert cost(price, usage(2000, 0, written=1000)) == Decimal("0.00675")


def test_reads_and_writes_never_count_past_the_prompt() -> None:
    price = Price(input=Decimal(1), output=Decimal(0), cached_input=Decimal(0))
    # reads clamp to the prompt; no plain or written token is left to pay for
    assert cost(price, usage(10, 0, cached=50, written=50)) == Decimal(0)


def test_a_table_tier_applies_to_every_token_of_a_long_prompt() -> None:
    price = Price.model_validate(
        {
            "input": "1.25",
            "output": "10",
            "tiers": [{"above": 200_000, "input": "2.50", "output": "15"}],
        }
    )
    assert cost(price, usage(200_000, 1000)) == Decimal("0.26")  # 250000 + 10000
    assert cost(price, usage(200_001, 1000)) == Decimal("0.5150025")  # 500002.5 + 15000


def test_gpt_4o_list_prices() -> None:
    price = listed("openai", "gpt-4o")
    assert cost(price, usage(1_000_000, 0), STANDARD_AT) == Decimal("2.5")
    assert cost(price, usage(0, 1_000_000), STANDARD_AT) == Decimal(10)
    assert cost(price, usage(1_000_000, 0, cached=1_000_000), STANDARD_AT) == Decimal("1.25")
    assert (price.input, price.output) == (Decimal("2.5"), Decimal(10))  # what routing weighs


def test_claude_sonnet_cache_writes_and_reads_from_the_anthropic_wire() -> None:
    """Anthropic's own usage, through our translation, billed as Anthropic bills it: writes at
    1.25 times the input rate, reads at a tenth."""
    wire = anthropic_usage(
        {
            "input_tokens": 1000,
            "cache_creation_input_tokens": 1000,
            "cache_read_input_tokens": 10_000,
            "output_tokens": 100,
        }
    )
    call = Usage.model_validate(wire)
    price = listed("anthropic", "claude-sonnet-4-0")
    # 1000 * 3 + 1000 * 3.75 + 10000 * 0.30 + 100 * 15 = 3000 + 3750 + 3000 + 1500
    assert cost(price, call, STANDARD_AT) == Decimal("0.01125")


def test_gemini_2_5_pro_bills_a_prompt_over_200k_at_the_long_context_rates() -> None:
    price = listed("gemini", "gemini-2.5-pro")
    below = Usage.model_validate(
        gemini_usage({"prompt_token_count": 200_000, "candidates_token_count": 1000})
    )
    above = Usage.model_validate(
        gemini_usage({"prompt_token_count": 200_001, "candidates_token_count": 1000})
    )
    assert cost(price, below, STANDARD_AT) == Decimal("0.26")  # 1.25 in, 10 out
    assert cost(price, above, STANDARD_AT) == Decimal("0.5150025")  # 2.50 in, 15 out


def test_a_provider_batch_call_and_a_service_tier_get_their_prices() -> None:
    price = listed("openai", "gpt-4o")
    call = usage(1_000_000, 1_000_000)
    assert cost(price, call, STANDARD_AT) == Decimal("12.5")
    assert cost(price, call, Billing(batch=True, at=AT)) == Decimal("6.25")
    priority = Billing.of({"service_tier": "priority"}, at=AT)
    assert cost(price, call, priority) == Decimal("21.25")  # 4.25 in, 17 out
    assert cost(price, call, Billing.of({"service_tier": "default"}, at=AT)) == Decimal("12.5")


@pytest.mark.parametrize(
    ("provider", "model", "input_rate"),
    [
        ("mock", "text-embedding-3-small", Decimal("0.02")),  # OpenAI-compatible: OpenAI's
        ("claude", "claude-3-5-haiku-latest", Decimal("0.8")),  # an Anthropic deployment
        ("openai", "gpt-4o-2024-08-06", Decimal("2.5")),  # a dated name of a listed model
    ],
)
def test_a_deployment_is_priced_by_its_name_or_its_api(
    provider: str, model: str, input_rate: Decimal
) -> None:
    assert cost(listed(provider, model), usage(1_000_000, 0), STANDARD_AT) == input_rate


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "echo"),  # not a model genai-prices lists
        ("vllm", "gpt-4o"),  # a local engine is not an external provider: never listed
        ("elsewhere", "gpt-4o"),  # a provider the table was not told about
    ],
)
def test_without_a_price_there_is_no_cost(provider: str, model: str) -> None:
    assert MAINTAINED.find(provider, model) is None


def test_the_prices_file_wins_for_the_models_it_lists(tmp_path: Path) -> None:
    override = tmp_path / "prices.yaml"
    override.write_text(
        'gpt-4o: {input: "1", output: "2"}\n'
        'mock/echo: {input: "0.5", output: "0.5", cache_write_input: "0.6"}\n'
        'vllm/qwen: {input: "0", output: "0"}\n'
    )
    merged = load_prices(override, PROVIDERS | {"mock": "openai"})
    assert merged.find("openai", "gpt-4o") == Price(input=Decimal(1), output=Decimal(2))
    assert isinstance(merged.find("openai", "gpt-4o-mini"), ListedPrice)  # the rest: listed
    echo = merged.find("mock", "echo")
    assert isinstance(echo, Price)
    assert echo.cache_write_input == Decimal("0.6")
    assert merged.find("other", "echo") is None  # a provider-specific entry
    assert merged.find("vllm", "qwen") == Price(input=Decimal(0), output=Decimal(0))
    assert PriceTable({}).find("openai", "gpt-4o") is None  # unknown: no cost, not zero


@pytest.mark.parametrize(
    "entry",
    [
        {"input": "1", "output": "1", "cached_inputs": "0.5"},  # misspelt: would bill at input
        {"input": "1", "output": "1", "tiers": [{"input": "2", "output": "2"}]},  # no `above`
    ],
)
def test_a_wrong_table_entry_is_refused(entry: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Price.model_validate(entry)
