"""Anthropic's Message Batches API through the official SDK: the requests inline (translated
from OpenAI's chat shape as the on-demand engine does), results JSONL read back by
`custom_id`, each answer translated back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
from anthropic.types.messages import MessageBatchRequestCounts

from aibroker.errors import ProviderRejected, ProviderUnavailable
from aibroker.routes import ProviderConfig
from consumers.offload.api import Answered, LineEnd, Refused
from consumers.providers.anthropic.wire import answered_json, from_message, messages_call
from consumers.providers.classify import classify_status
from schemas.envelopes import Request, Target
from schemas.openai import Usage

CLOCK_SKEW_S = 30.0
"""How far the provider's clock may be behind ours when a lost batch is looked for."""
FINAL_ERRORS = frozenset({"invalid_request_error", "authentication_error", "permission_error"})
"""A line's error types that would fail on demand too; any other goes back to the normal path."""


class AnthropicBatches:
    max_bytes: int | None = None

    def __init__(self, config: ProviderConfig, *, drop_unsupported: bool) -> None:
        self.config = config
        self.drop = drop_unsupported
        self.client = anthropic.AsyncAnthropic(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=config.timeout_s,
            max_retries=2,
        )

    def group(self, request: Request) -> str:
        return "/v1/messages"

    def line(self, request: Request, target: Target) -> dict[str, Any]:
        return {"custom_id": request.id, "params": self._params(request, target)}

    def _params(self, request: Request, target: Target) -> dict[str, Any]:
        return messages_call(
            request,
            target,
            default_max_tokens=self.config.default_max_tokens,
            drop_unsupported=self.drop,
            stream=False,
        )

    async def create(self, lines: list[dict[str, Any]], group: str, our_id: str) -> str:
        with _translated():
            batch = await self.client.messages.batches.create(requests=lines)  # type: ignore[arg-type]
        return batch.id

    async def find(self, our_id: str, *, since: float, lines: int, claimed: set[str]) -> str | None:
        """A message batch carries no metadata and the API takes no idempotency key: the one
        we may have created is the earliest, created since we first tried (less the clocks'
        skew), with as many requests, that no batch of ours holds. A wrong match costs no
        double answer: its results carry other custom ids, so our lines go on demand."""
        with _translated():
            page = await self.client.messages.batches.list(limit=100)
        listed = [
            Listed(b.id, b.created_at.timestamp(), _total(b.request_counts)) for b in page.data
        ]
        return lost_batch(listed, since=since, lines=lines, claimed=claimed)

    async def ended(self, provider_id: str) -> bool:
        with _translated():
            batch = await self.client.messages.batches.retrieve(provider_id)
        return batch.processing_status == "ended"

    async def results(self, provider_id: str, requests: list[Request]) -> dict[str, LineEnd]:
        json_mode = {
            r.id: answered_json(self._params(r, r.target)) for r in requests if r.target is not None
        }
        ends: dict[str, LineEnd] = {}
        with _translated():
            async for line in await self.client.messages.batches.results(provider_id):
                result = line.result
                if result.type == "succeeded":
                    message = result.message.model_dump(mode="json")
                    response = from_message(message, json_mode.get(line.custom_id, False))
                    ends[line.custom_id] = Answered(
                        response, Usage.model_validate(response["usage"])
                    )
                elif result.type == "errored" and result.error.error.type in FINAL_ERRORS:
                    error = ProviderRejected(result.error.error.message, provider_status=400)
                    ends[line.custom_id] = Refused(error)
        return ends

    async def cancel(self, provider_id: str) -> None:
        with _translated():
            await self.client.messages.batches.cancel(provider_id)

    async def aclose(self) -> None:
        await self.client.close()


@dataclass(frozen=True)
class Listed:
    """What the list of message batches says of one."""

    id: str
    created_at: float
    lines: int


def lost_batch(listed: list[Listed], *, since: float, lines: int, claimed: set[str]) -> str | None:
    """The earliest batch created since `since` (less `CLOCK_SKEW_S`) with `lines` requests
    that none of ours holds: the one a pool created and never learnt the id of."""
    found = [
        b
        for b in listed
        if b.id not in claimed and b.created_at >= since - CLOCK_SKEW_S and b.lines == lines
    ]
    return min(found, key=lambda b: b.created_at).id if found else None


def _total(counts: MessageBatchRequestCounts) -> int:
    return counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except anthropic.APIStatusError as exc:
        raise classify_status(exc.status_code, exc.response.headers, exc.body) from exc
    except anthropic.APIError as exc:
        raise ProviderUnavailable(f"batch API unreachable: {type(exc).__name__}") from exc
