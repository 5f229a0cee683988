"""Gemini's Batch API (the Gemini Developer API's `batchGenerateContent`) through the official
`google-genai` SDK: one batch job per model, its requests inline (translated from OpenAI's chat
shape as the on-demand engine does), each keyed by `metadata.key` = request id, our id as the
job's display name; answers read back from the job's inlined responses."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from aibroker.errors import ProviderUnavailable
from aibroker.routes import ProviderConfig
from consumers.offload.api import Answered, LineEnd, Refused
from consumers.providers.classify import classify_status
from consumers.providers.gemini.wire import from_response, to_generate_content
from schemas.envelopes import Request, Target
from schemas.openai import Usage

JobState = genai_types.JobState
ENDED = frozenset(
    {JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED}
    | {JobState.JOB_STATE_EXPIRED}
)
INLINE_BYTES = 19 * 1024 * 1024
"""Gemini takes inline requests up to 20 MB a batch; a little is kept for the encoding."""
FINAL_STATUSES = frozenset({400, 401, 403, 404})
"""A line's error codes that would fail on demand too; any other goes back to the normal path."""


class GeminiBatches:
    max_bytes: int | None = INLINE_BYTES

    def __init__(self, config: ProviderConfig, *, drop_unsupported: bool) -> None:
        self.drop = drop_unsupported
        self.client = genai.Client(
            api_key=config.api_key,
            http_options={
                "base_url": config.base_url,
                "api_version": "v1beta",  # the Batch API is served there only
                "timeout": int(config.timeout_s * 1000),
            },
        )

    def group(self, request: Request) -> str:
        """A Gemini batch job runs one model."""
        return request.target.model if request.target is not None else request.model

    def line(self, request: Request, target: Target) -> dict[str, Any]:
        call = to_generate_content(request.body, drop_unsupported=self.drop)
        return {**call, "metadata": {"key": request.id}}

    async def create(self, lines: list[dict[str, Any]], group: str, our_id: str) -> str:
        with _translated():
            job = await self.client.aio.batches.create(
                model=group,
                src=lines,  # type: ignore[arg-type]
                config={"display_name": our_id},
            )
        if job.name is None:
            raise ProviderUnavailable("Gemini answered a batch create without a name")
        return job.name

    async def find(self, our_id: str, *, since: float, lines: int, claimed: set[str]) -> str | None:
        """Our id is the job's display name."""
        with _translated():
            pager = await self.client.aio.batches.list(config={"page_size": 100})
        return next((j.name for j in pager.page if j.display_name == our_id and j.name), None)

    async def ended(self, provider_id: str) -> bool:
        with _translated():
            job = await self.client.aio.batches.get(name=provider_id)
        return job.state in ENDED

    async def results(self, provider_id: str, requests: list[Request]) -> dict[str, LineEnd]:
        with _translated():
            job = await self.client.aio.batches.get(name=provider_id)
        responses = (job.dest.inlined_responses if job.dest else None) or []
        models = {r.id: r.target.model for r in requests if r.target is not None}
        ends: dict[str, LineEnd] = {}
        for answer in responses:
            request_id = (answer.metadata or {}).get("key")
            if request_id is None or request_id not in models:
                continue
            if answer.response is not None:
                doc = answer.response.model_dump(mode="json", exclude_none=True)
                response = from_response(doc, models[request_id])
                ends[request_id] = Answered(response, Usage.model_validate(response["usage"]))
            elif answer.error is not None and (answer.error.code or 500) in FINAL_STATUSES:
                body = {"error": {"message": answer.error.message or "refused"}}
                ends[request_id] = Refused(classify_status(answer.error.code or 400, {}, body))
        return ends

    async def cancel(self, provider_id: str) -> None:
        with _translated():
            await self.client.aio.batches.cancel(name=provider_id)

    async def aclose(self) -> None:
        await self.client.aio.aclose()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """The SDK's errors as broker errors, by HTTP status."""
    try:
        yield
    except genai_errors.APIError as exc:
        body = exc.details if isinstance(exc.details, dict) else {}
        raise classify_status(exc.code, {}, body) from exc
    except (aiohttp.ClientError, httpx.TransportError, TimeoutError) as exc:
        raise ProviderUnavailable(f"batch API unreachable: {type(exc).__name__}") from exc
