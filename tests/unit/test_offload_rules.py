"""The offload choice as a table: lane, attempt, policy (default, tenant, alias), the target's
API, the deadline against the window minus the margin, and the price table's batch discount."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aibroker.prices import Price, PriceTable
from aibroker.rules.offload import (
    Line,
    Offload,
    OnDemand,
    batch_discount,
    choose_offload,
    policy_for,
)
from aibroker.settings import Settings
from aibroker.settings.offload import OffloadPolicy, OffloadSettings

pytestmark = pytest.mark.unit

NOW = 1_000_000.0
DAY = 86_400.0
HALF = Decimal("0.5")
AUTO = OffloadSettings(policy=OffloadPolicy.AUTO)  # window 24 h, margin 1 h: 23 h needed
ALWAYS = OffloadSettings(policy=OffloadPolicy.ALWAYS)
NEVER = OffloadSettings()


def line(
    priority: str = "batch", attempt: int = 1, deadline: float | None = None, alias: str = "m"
) -> Line:
    return Line(priority=priority, attempt=attempt, deadline=deadline, tenant="t", alias=alias)


CASES = [
    # (line, api, discount, settings, expected)
    (line(), "openai", HALF, AUTO, Offload(HALF)),
    (line(), "anthropic", HALF, AUTO, Offload(HALF)),
    (line(priority="interactive"), "openai", HALF, ALWAYS, OnDemand("interactive")),
    (line(attempt=2), "openai", HALF, ALWAYS, OnDemand("retry")),
    (line(), "openai", HALF, NEVER, OnDemand("policy")),
    (line(), "gemini", HALF, ALWAYS, Offload(HALF)),
    (line(), None, HALF, ALWAYS, OnDemand("no batch API")),  # a local engine
    (line(deadline=NOW + DAY), "openai", HALF, AUTO, Offload(HALF)),  # a caller's 24 h batch
    (line(deadline=NOW + DAY - 3600), "openai", HALF, AUTO, Offload(HALF)),  # just enough
    (line(deadline=NOW + DAY - 3601), "openai", HALF, AUTO, OnDemand("deadline")),
    (line(deadline=NOW + 600), "openai", HALF, ALWAYS, OnDemand("deadline")),
    (line(deadline=NOW - 1), "openai", HALF, ALWAYS, OnDemand("deadline")),
    (line(), "openai", None, AUTO, OnDemand("no discount")),  # no price known
    (line(), "openai", Decimal(0), AUTO, OnDemand("no discount")),  # no batch price
    (line(), "openai", None, ALWAYS, Offload(Decimal(0))),
    (line(), "anthropic", Decimal(0), ALWAYS, Offload(Decimal(0))),
]


@pytest.mark.parametrize(("request_line", "api", "discount", "settings", "expected"), CASES)
def test_choice(
    request_line: Line,
    api: str | None,
    discount: Decimal | None,
    settings: OffloadSettings,
    expected: Offload | OnDemand,
) -> None:
    got = choose_offload(request_line, api=api, discount=discount, settings=settings, now=NOW)
    assert got == expected


def test_margin_and_window_are_settings() -> None:
    short = OffloadSettings(policy=OffloadPolicy.AUTO, completion_window_s=3600, margin_s=600)
    soon = line(deadline=NOW + 3000)  # the window minus the margin is left

    def choice(settings: OffloadSettings) -> Offload | OnDemand:
        return choose_offload(soon, api="openai", discount=HALF, settings=settings, now=NOW)

    assert choice(short) == Offload(HALF)
    assert choice(AUTO) == OnDemand("deadline")
    wide = OffloadSettings(policy=OffloadPolicy.AUTO, completion_window_s=3600, margin_s=3000)
    assert choice(wide) == OnDemand("deadline")  # the margin itself must be left, and more


def test_alias_policy_wins_over_tenant_over_default() -> None:
    settings = OffloadSettings(
        tenant_policy={"t": OffloadPolicy.AUTO, "u": OffloadPolicy.NEVER},
        alias_policy={"cheap": OffloadPolicy.ALWAYS, "urgent": OffloadPolicy.NEVER},
    )
    assert policy_for(settings, "t", "m") is OffloadPolicy.AUTO
    assert policy_for(settings, "u", "cheap") is OffloadPolicy.ALWAYS
    assert policy_for(settings, "t", "urgent") is OffloadPolicy.NEVER
    assert policy_for(settings, "other", "m") is OffloadPolicy.NEVER
    assert choose_offload(
        line(alias="urgent"), api="openai", discount=HALF, settings=settings, now=NOW
    ) == OnDemand("policy")


def test_policy_maps_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIBROKER_OFFLOAD_POLICY", "auto")
    monkeypatch.setenv("AIBROKER_OFFLOAD_ALIAS_POLICY", '{"gpt-4o": "never"}')
    read = Settings().offload
    assert read.policy is OffloadPolicy.AUTO
    assert read.alias_policy == {"gpt-4o": OffloadPolicy.NEVER}
    assert read.tenant_policy == {}


def test_discount_from_the_price_table() -> None:
    table = PriceTable({}, {"mock": "openai"})
    assert batch_discount(table.find("mock", "gpt-4o")) == HALF  # genai-prices' batch price
    flat = Price(input=Decimal(1), output=Decimal(2))
    assert batch_discount(flat) == 0  # a YAML price has no batch rate: nothing known saved
    assert batch_discount(Price(input=Decimal(0), output=Decimal(0))) is None
    assert batch_discount(None) is None
