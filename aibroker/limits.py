"""Quota limits, as a tenant or one of its keys carries them."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """Quota of a tenant or of one of its keys; None: no limit of that kind."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(default=None, ge=1, description="Requests admitted per minute.")
    tpm: int | None = Field(
        default=None, ge=1, description="Tokens per minute (prompt + max_tokens, reconciled)."
    )
    concurrency: int | None = Field(default=None, ge=1, description="Requests in flight at once.")
    budget_usd_month: Decimal | None = Field(
        default=None, ge=0, description="Spend per calendar month (UTC), from results' cost."
    )
