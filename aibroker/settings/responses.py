"""The Responses API's settings (`AIBROKER_RESPONSES_*`): how long a stored response (its input,
its output and a background response's stream events) is kept."""

from __future__ import annotations

from pydantic import Field

from aibroker.settings.base import SettingsGroup

THIRTY_DAYS_S = 30 * 24 * 3600


class ResponsesSettings(SettingsGroup):
    retention_s: int = Field(default=THIRTY_DAYS_S, ge=60)
    """How long a stored response (`store: true`, the default) is kept for
    `previous_response_id` and `GET /v1/responses/{id}/input_items`, and a background
    response's events for `GET /v1/responses/{id}?stream=true` (seconds; OpenAI keeps 30
    days). Counted from the request, not from its end."""
    tenant_retention_s: dict[str, int] = Field(default_factory=dict)
    """Retention per tenant as JSON (`{"acme": 86400}`), over `retention_s`."""
    events_cap: int = Field(default=10_000, ge=16)
    """Most stream events kept per background response; past it the oldest are trimmed (a
    resume from before them starts at the oldest kept)."""

    def retention_of(self, tenant: str) -> int:
        """The tenant's retention, else the global one."""
        return self.tenant_retention_s.get(tenant, self.retention_s)
