"""OpenAI's Responses API at the door (`POST /v1/responses`): the fields the broker reads are
typed, the rest pass through (and are checked by the translation where a target needs one);
and the Response object's status words."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ResponsesRequest(BaseModel):
    """`POST /v1/responses`. `input` stays as sent (a string or a list of items); `background`
    and `store` are the broker's to honour (every request is kept for the results' TTL)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    input: str | list[dict[str, Any]] = Field(min_length=1)
    instructions: str | None = None
    stream: bool = False
    background: bool = False
    store: bool = True
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = Field(
        default=None, description="`format`: `text`, `json_object` or `json_schema`."
    )
    reasoning: dict[str, Any] | None = Field(default=None, description="`effort`, `summary`.")
    metadata: dict[str, str] | None = None
    previous_response_id: str | None = None
    user: str | None = None


class ResponseStatus(StrEnum):
    """`status` of a Response object, as OpenAI names them."""

    QUEUED = "queued"
    """Accepted (in Kafka), not yet picked up by a pool."""
    IN_PROGRESS = "in_progress"
    """A pool is calling the model."""
    COMPLETED = "completed"
    """Answered in full."""
    INCOMPLETE = "incomplete"
    """Answered, cut short (`incomplete_details.reason`: `max_output_tokens`, ...)."""
    FAILED = "failed"
    """Ended with an `error` (an expired deadline too)."""
    CANCELLED = "cancelled"
    """The client cancelled it."""
