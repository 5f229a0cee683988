"""`Broker`: the broker's HTTP API for a program. Submit work asynchronously, wait for it by
long-poll (`GET /v1/requests/{id}?wait=N`), cancel it, take results as they end; upload a
batch input file and follow the batch to its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict

from aibroker.client.errors import raise_for
from schemas.batches import BatchStatus, RequestCounts
from schemas.envelopes import Status, Webhook

Endpoint = Literal["/v1/chat/completions", "/v1/embeddings", "/v1/ocr"]
LONG_POLL_S = 30.0
"""One long-poll's wait; the broker caps it (`AIBROKER_INGRESS_MAX_POLL_WAIT_S`, 60 s)."""


class RequestState(BaseModel):
    """A request's status document (`GET /v1/requests/{id}`)."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: Status
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    cost_usd: str | None = None
    attempts: int | None = None
    total_ms: float | None = None

    @property
    def ended(self) -> bool:
        return self.status.terminal


class BatchProgress(BaseModel):
    """Where a batch stands: its OpenAI batch object, in short."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: BatchStatus
    request_counts: RequestCounts = RequestCounts()
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: dict[str, Any] | None = None

    @property
    def done(self) -> int:
        return self.request_counts.completed + self.request_counts.failed


class Broker:
    """One tenant's key on one broker. `transport` is httpx's (an ASGI app's, in tests)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = LONG_POLL_S + 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def submit(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        *,
        deadline: float | None = None,
        webhook: str | Webhook | None = None,
        idempotency_key: str | None = None,
    ) -> RequestState:
        """Accepted work (202): its id and `queued` state. The same `idempotency_key` again
        answers the first submission."""
        hook = Webhook(url=webhook) if isinstance(webhook, str) else webhook
        payload: dict[str, Any] = {"endpoint": endpoint, "body": body}
        if deadline is not None:
            payload["deadline"] = deadline
        if hook is not None:
            payload["webhook"] = hook.model_dump(mode="json")
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        answer = await self._http.post("/v1/requests", json=payload, headers=headers)
        raise_for(answer)
        return RequestState.model_validate(answer.json())

    async def get(self, request_id: str, *, wait: float = 0) -> RequestState:
        """The request's state; with `wait`, as soon as it ends or after `wait` s."""
        params = {"wait": wait} if wait else None
        answer = await self._http.get(f"/v1/requests/{request_id}", params=params)
        raise_for(answer)
        return RequestState.model_validate(answer.json())

    async def wait(self, request_id: str) -> RequestState:
        """The request's terminal state, by long-poll (bound it with `asyncio.timeout`)."""
        while True:
            state = await self.get(request_id, wait=LONG_POLL_S)
            if state.ended:
                return state

    async def cancel(self, request_id: str) -> RequestState:
        """Cancel a request that has not ended; its state once it has."""
        answer = await self._http.delete(f"/v1/requests/{request_id}")
        raise_for(answer)
        return RequestState.model_validate(answer.json())

    async def run(self, endpoint: Endpoint, body: dict[str, Any]) -> RequestState:
        """Submit, then wait for the end."""
        accepted = await self.submit(endpoint, body)
        return await self.wait(accepted.id)

    async def results(self, request_ids: Iterable[str]) -> AsyncIterator[RequestState]:
        """Each request's terminal state, in the order they end (one long-poll each)."""
        waits = [asyncio.ensure_future(self.wait(i)) for i in request_ids]
        try:
            for ended in asyncio.as_completed(waits):
                yield await ended
        finally:
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def upload_batch(
        self,
        lines: Path | bytes,
        *,
        endpoint: str = "/v1/chat/completions",
        window: str = "24h",
        metadata: dict[str, str] | None = None,
    ) -> BatchProgress:
        """Upload a JSONL input file (OpenAI's batch format) and start its batch."""
        if isinstance(lines, Path):
            data, name = await asyncio.to_thread(lines.read_bytes), lines.name
        else:
            data, name = lines, "batch.jsonl"
        answer = await self._http.post(
            "/v1/files", files={"file": (name, data)}, data={"purpose": "batch"}
        )
        raise_for(answer)
        start = {
            "input_file_id": answer.json()["id"],
            "endpoint": endpoint,
            "completion_window": window,
            **({"metadata": metadata} if metadata else {}),
        }
        answer = await self._http.post("/v1/batches", json=start)
        raise_for(answer)
        return BatchProgress.model_validate(answer.json())

    async def batch(self, batch_id: str) -> BatchProgress:
        answer = await self._http.get(f"/v1/batches/{batch_id}")
        raise_for(answer)
        return BatchProgress.model_validate(answer.json())

    async def follow_batch(
        self,
        batch_id: str,
        *,
        on_progress: Callable[[BatchProgress], None] | None = None,
        interval: float = 1.0,
    ) -> BatchProgress:
        """Poll the batch every `interval` s until it ends, telling `on_progress` each time
        (bound it with `asyncio.timeout`)."""
        while True:
            progress = await self.batch(batch_id)
            if on_progress is not None:
                on_progress(progress)
            if progress.status.ended:
                return progress
            await asyncio.sleep(interval)  # the batch API has no long-poll

    async def cancel_batch(self, batch_id: str) -> BatchProgress:
        answer = await self._http.post(f"/v1/batches/{batch_id}/cancel")
        raise_for(answer)
        return BatchProgress.model_validate(answer.json())

    async def file_content(self, file_id: str) -> bytes:
        """An output or error file's JSONL."""
        answer = await self._http.get(f"/v1/files/{file_id}/content")
        raise_for(answer)
        return answer.content
