"""A tenant's webhook endpoint and the two shapes its messages may take: the broker's own
events (`request.*`, `batch.*`, `budget.threshold`) or OpenAI's event objects (`response.*`,
`batch.*`), which the `openai` SDK's `client.webhooks.unwrap()` parses."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.envelopes import WebhookEvent


class WebhookFormat(StrEnum):
    """The shape of an endpoint's messages."""

    AIBROKER = "aibroker"
    """The broker's events, `{"type", "timestamp", "data"}`: the status document of every
    request, the batch object of every batch, budget thresholds."""
    OPENAI = "openai"
    """OpenAI's events, `{"id": "evt_…", "object": "event", "created_at", "type", "data":
    {"id"}}`: Responses API requests (`resp_…`) and batches only, as OpenAI sends them."""


class OpenAIEvent(StrEnum):
    """The OpenAI webhook events the broker sends (OpenAI has none for chat completions)."""

    RESPONSE_COMPLETED = "response.completed"
    """A Responses API request succeeded with its whole answer."""
    RESPONSE_FAILED = "response.failed"
    """It ended with an error, or its deadline passed before it could run."""
    RESPONSE_CANCELLED = "response.cancelled"
    """The client cancelled it."""
    RESPONSE_INCOMPLETE = "response.incomplete"
    """It succeeded, but the answer stopped short (`max_output_tokens`, a content filter)."""
    BATCH_COMPLETED = "batch.completed"
    """A batch job ran every line."""
    BATCH_FAILED = "batch.failed"
    """A batch job's input was refused."""
    BATCH_EXPIRED = "batch.expired"
    """A batch job's completion window ended first."""
    BATCH_CANCELLED = "batch.cancelled"
    """A batch job was cancelled."""


EVENT_TYPES: dict[WebhookFormat, tuple[str, ...]] = {
    WebhookFormat.AIBROKER: tuple(WebhookEvent),
    WebhookFormat.OPENAI: tuple(OpenAIEvent),
}
"""The event types an endpoint of each format may ask for; all of them when it names none."""


class WebhookEndpoint(BaseModel):
    """Where a tenant's events go, in which shape, and which of them."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    format: WebhookFormat = Field(
        default=WebhookFormat.AIBROKER,
        description="`aibroker` (the broker's events) or `openai` (OpenAI's event objects).",
    )
    events: list[str] = Field(
        default_factory=list,
        description="Event types of its format it hears; absent: every one of them.",
    )

    @model_validator(mode="before")
    @classmethod
    def _every_event_by_default(cls, data: Any) -> Any:
        """Absent events mean every event of the endpoint's format (a bad format is refused
        by the field's own check)."""
        if isinstance(data, dict) and data.get("events") is None:
            given = data.get("format", WebhookFormat.AIBROKER)
            if isinstance(given, str) and given in EVENT_TYPES:
                return data | {"events": list(EVENT_TYPES[WebhookFormat(given)])}
        return data

    @model_validator(mode="after")
    def _known_events(self) -> Self:
        """An event type the format does not have is refused by name (a typo would otherwise
        be an endpoint that silently hears nothing)."""
        known = EVENT_TYPES[self.format]
        for name in self.events:
            if name not in known:
                raise ValueError(
                    f"unknown event type '{name}' for a webhook of format '{self.format.value}'"
                    f" (known: {', '.join(known)})"
                )
        return self
