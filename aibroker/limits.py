"""Quota limits, as a tenant or one of its keys carries them."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

MAX_COUNT = 10**12
"""Larger limits mean "none" in practice, and must stay within Redis's 64-bit integers (the
quota script multiplies them)."""


class Limits(BaseModel):
    """Quota of a tenant or of one of its keys; None: no limit of that kind."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="Requests admitted per minute."
    )
    tpm: int | None = Field(
        default=None,
        ge=1,
        le=MAX_COUNT,
        description="Tokens per minute (prompt + max_tokens, reconciled).",
    )
    concurrency: int | None = Field(
        default=None, ge=1, le=MAX_COUNT, description="Requests in flight at once."
    )
    budget_usd_month: Decimal | None = Field(
        default=None,
        ge=0,
        le=10**9,
        description="Spend per calendar month (UTC), from results' cost.",
    )


def exceeded(asked: Limits, granted: Limits) -> str | None:
    """The first limit `asked` sets above the one `granted` sets: what a tenant admin may not
    give a key of its tenant (a limit left unset is bound by the tenant's own). None: fits."""
    for name in Limits.model_fields:
        cap, want = getattr(granted, name), getattr(asked, name)
        if cap is not None and want is not None and want > cap:
            return name
    return None
