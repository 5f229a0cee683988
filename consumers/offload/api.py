"""What an offload pool needs of a provider's batch API, and what one line of a provider batch
came to: a port, one adapter per API (`openai_batches.py`, `anthropic_batches.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from aibroker.errors import BrokerError
from schemas.envelopes import Request, Target
from schemas.openai import Usage


@dataclass(frozen=True)
class Answered:
    """The line succeeded: its OpenAI-shaped response and usage."""

    response: dict[str, Any]
    usage: Usage | None


@dataclass(frozen=True)
class Refused:
    """The provider refused the line as it would on demand (a 4xx): its error is final."""

    error: BrokerError


LineEnd = Answered | Refused
"""A line of an ended provider batch. A line absent from the results (expired, cancelled,
failed for a retryable reason, or the whole batch failed) goes back to the normal path."""


class BatchAPI(Protocol):
    max_bytes: int | None
    """The API's own bound on one batch's bytes where it is below any setting's (Gemini's
    inline requests), else None."""

    def group(self, request: Request) -> str:
        """Lines of one group may share a provider batch (OpenAI's: one endpoint each)."""
        ...

    def line(self, request: Request, target: Target) -> dict[str, Any]:
        """The line as the provider's batch API takes it, `custom_id` the request id."""
        ...

    async def create(self, lines: list[dict[str, Any]], group: str, our_id: str) -> str:
        """Create the provider batch; its id at the provider. Raises BrokerError."""
        ...

    async def find(self, our_id: str, *, since: float, lines: int, claimed: set[str]) -> str | None:
        """The provider's id of a batch we may have created under `our_id` (first tried at
        `since`, of `lines` lines), none of `claimed` (held by our other batches), if any."""
        ...

    async def ended(self, provider_id: str) -> bool:
        """Whether the provider batch has ended (whatever became of its lines)."""
        ...

    async def results(self, provider_id: str, requests: list[Request]) -> dict[str, LineEnd]:
        """Each answered or refused line of an ended batch, by request id."""
        ...

    async def cancel(self, provider_id: str) -> None: ...

    async def aclose(self) -> None: ...
