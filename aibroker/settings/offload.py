"""Offload settings (`AIBROKER_OFFLOAD_*`): which batch-lane work the dispatcher hands to the
providers' own batch APIs, and how the offload pools gather and poll provider batches."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from aibroker.settings.base import SettingsGroup


class OffloadPolicy(StrEnum):
    """Whether batch-lane work may go to a provider's batch API."""

    NEVER = "never"
    """Every line is called on demand (the default until an operator turns offload on)."""
    AUTO = "auto"
    """Offload a line when its deadline leaves room and the price table shows a discount."""
    ALWAYS = "always"
    """Offload a line when its deadline leaves room, whatever the price table says (a model
    the table does not list, a provider whose discount it does not know)."""


class OffloadSettings(SettingsGroup):
    policy: OffloadPolicy = OffloadPolicy.NEVER
    """The policy of every tenant and alias that sets none of its own."""
    tenant_policy: dict[str, OffloadPolicy] = Field(default_factory=dict)
    """Policy per tenant as JSON (`{"acme": "auto"}`), over `policy`."""
    alias_policy: dict[str, OffloadPolicy] = Field(default_factory=dict)
    """Policy per model alias as JSON (`{"gpt-4o": "always"}`), over the tenant's."""
    completion_window_s: float = Field(default=86_400.0, gt=0)
    """How long a provider may take over a batch (OpenAI's and Anthropic's: 24 h)."""
    margin_s: float = Field(default=3_600.0, ge=0)
    """Time kept to finish on demand the lines of a provider batch that failed, expired or is
    still running: the pool gives up on a provider batch this long before its first line's
    deadline (cancels it, ends what it answered, sends the rest on demand). A line is offloaded
    only if its deadline is at least the completion window minus this margin away, so a
    caller's 24 h batch qualifies."""
    max_lines: int = Field(default=10_000, ge=1)
    """Most lines in one provider batch (OpenAI allows 50,000, Anthropic 100,000)."""
    max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    """Most bytes of one provider batch's requests (OpenAI allows 200 MB, Anthropic 256 MB)."""
    max_age_s: float = Field(default=60.0, gt=0)
    """Longest a line waits in the pool for its provider batch to fill before it is sent."""
    poll_min_s: float = Field(default=5.0, gt=0)
    """First wait before a provider batch's state is read again; doubled after each read."""
    poll_max_s: float = Field(default=300.0, gt=0)
    """Longest wait between two reads of a provider batch's state."""
