"""OpenAI's Batch API (and every OpenAI-compatible server that has one), through the official
SDK: the lines as a JSONL file (`purpose=batch`), one endpoint per batch, output and error
files read back by `custom_id`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import openai
import orjson

from aibroker.errors import ProviderUnavailable
from aibroker.routes import ProviderConfig
from consumers.offload.api import Answered, LineEnd, Refused
from consumers.providers.classify import classify_status
from consumers.providers.openai.lean import upstream_call, usage_of
from schemas.envelopes import Request, Target

ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
OUR_ID = "aibroker_batch"
"""The metadata key that names our id of a provider batch (how a restart finds it)."""


class OpenAIBatches:
    max_bytes: int | None = None

    def __init__(self, config: ProviderConfig) -> None:
        self.client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=config.timeout_s,
            max_retries=2,
        )

    def group(self, request: Request) -> str:
        return f"/v1{upstream_call(request, _ANY, stream=False)[0]}"

    def line(self, request: Request, target: Target) -> dict[str, Any]:
        path, body = upstream_call(request, target, stream=False)
        body.pop("stream", None)
        return {"custom_id": request.id, "method": "POST", "url": f"/v1{path}", "body": body}

    async def create(self, lines: list[dict[str, Any]], group: str, our_id: str) -> str:
        jsonl = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        with _translated():
            uploaded = await self.client.files.create(
                file=(f"{our_id}.jsonl", jsonl), purpose="batch"
            )
            batch = await self.client.batches.create(
                input_file_id=uploaded.id,
                endpoint=group,  # type: ignore[arg-type]
                completion_window="24h",
                metadata={OUR_ID: our_id},
            )
        return batch.id

    async def find(self, our_id: str, *, since: float, lines: int, claimed: set[str]) -> str | None:
        """Our id is in the batch's metadata."""
        with _translated():
            page = await self.client.batches.list(limit=100)
        return next((b.id for b in page.data if (b.metadata or {}).get(OUR_ID) == our_id), None)

    async def ended(self, provider_id: str) -> bool:
        with _translated():
            batch = await self.client.batches.retrieve(provider_id)
        return batch.status in ENDED

    async def results(self, provider_id: str, requests: list[Request]) -> dict[str, LineEnd]:
        with _translated():
            batch = await self.client.batches.retrieve(provider_id)
            if batch.output_file_id is None:
                return {}
            content = (await self.client.files.content(batch.output_file_id)).content
        ends: dict[str, LineEnd] = {}
        for raw in content.splitlines():
            if raw.strip():
                custom_id, end = _line_end(orjson.loads(raw))
                if end is not None:
                    ends[custom_id] = end
        return ends

    async def cancel(self, provider_id: str) -> None:
        with _translated():
            await self.client.batches.cancel(provider_id)

    async def aclose(self) -> None:
        await self.client.close()


_ANY = Target(provider="-", model="-")


def _line_end(line: dict[str, Any]) -> tuple[str, LineEnd | None]:
    """An output line: answered, refused (a 4xx the provider would give on demand too), or
    None for a retryable failure (it goes back to the normal path)."""
    custom_id = str(line.get("custom_id"))
    response = line.get("response") or {}
    status = int(response.get("status_code") or 0)
    body = response.get("body")
    if status == 200 and isinstance(body, dict):
        return custom_id, Answered(body, usage_of(body))
    error = classify_status(status or 500, {}, body)
    return custom_id, None if error.retryable else Refused(error)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """The SDK's errors as broker errors, by type and status."""
    try:
        yield
    except openai.APIStatusError as exc:
        raise classify_status(exc.status_code, exc.response.headers, exc.body) from exc
    except openai.APIError as exc:
        raise ProviderUnavailable(f"batch API unreachable: {type(exc).__name__}") from exc
