"""Ingress's side of retrieval: an operation written to `rag.jobs` for the RAG worker (the one
process that holds Qdrant, and the collections' definitions), then, for a short one, its
result awaited as any request's (the results sink stores it; a completion notice says so).
Both route families, `/v1/rag/*` and `/v1/vector_stores`, go through `run_op` and `start_op`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError
from starlette.responses import Response

from aibroker.errors import Unavailable
from aibroker.identity import Client
from aibroker.ids import new_id
from aibroker.kafka.clients import encode
from aibroker.stores.guard import deadline
from aibroker.stores.results import RedisRequestStore
from ingress.state import Services
from ingress.views import json_response, result_response
from schemas.envelopes import Result, Status, Webhook
from schemas.rag import RagJob, RagOp


class OperationFailed(Exception):
    """The worker ended the operation failed: `result` is its end, answered as is."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.error.message if result.error else result.status.value)
        self.result = result

    def response(self) -> Response:
        return result_response(self.result)


def _store(svc: Services) -> RedisRequestStore:
    return RedisRequestStore(svc.redis, svc.settings.redis.ttl_s)


async def start_op(
    svc: Services,
    caller: Client,
    op: RagOp,
    collection: str | None,
    body: dict[str, Any],
    *,
    webhook: Webhook | None = None,
    wait_s: float | None = None,
    job_id: str | None = None,
) -> str:
    """Write the operation (keyed by its collection: one collection's operations stay in
    order) once it is recorded as queued; its id. Kafka refusing it is 503."""
    now = time.time()
    job = RagJob(
        id=job_id or new_id("req"),
        tenant=caller.tenant,
        key_id=caller.key_id,
        user=caller.user,
        op=op,
        collection=collection,
        body=body,
        webhook=webhook,
        created_at=now,
        deadline=now + wait_s if wait_s is not None else None,
    )
    store = _store(svc)
    with (
        contextlib.suppress(RedisError, TimeoutError),
        deadline(svc.settings.redis.request_timeout_s),
    ):
        # Best effort, as any accept's `queued` mark: the worker marks it running anyway.
        await store.advance(job.id, job.tenant, Status.QUEUED)
    key = (collection or f"tenant:{caller.tenant}").encode()
    try:
        await svc.publisher.forward_record(svc.names.rag_jobs, encode(job), key)
    except KafkaError as exc:
        with contextlib.suppress(RedisError, TimeoutError):
            await store.delete(job.id)
        raise Unavailable("The broker cannot accept work right now; retry shortly.") from exc
    return job.id


async def run_op(
    svc: Services,
    caller: Client,
    op: RagOp,
    collection: str | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A short operation, answered when the worker has done it: its response document, or
    `OperationFailed` (404 for another tenant's collection, 400, …); 503 when the worker
    has not answered within `AIBROKER_RAG_WAIT_S`. Its state is forgotten once read."""
    wait_s = svc.settings.rag.wait_s
    job_id = await start_op(svc, caller, op, collection, body or {}, wait_s=wait_s)
    state = await svc.submission.wait_for_end(job_id, caller.tenant, wait_s, known=True)
    if not state.status.terminal or state.result is None:
        raise Unavailable(
            f"The RAG worker did not answer within {wait_s:.0f}s (operation {job_id}).",
            retry_after=2,
        )
    with contextlib.suppress(RedisError, TimeoutError):
        await _store(svc).delete(job_id)
    if state.status is not Status.SUCCEEDED or state.result.response is None:
        raise OperationFailed(state.result)
    return state.result.response


async def op_response(
    svc: Services,
    caller: Client,
    op: RagOp,
    collection: str | None = None,
    body: dict[str, Any] | None = None,
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    """`run_op` answered: its document (through `shape`), or the failure as the worker said."""
    try:
        doc = await run_op(svc, caller, op, collection, body)
    except OperationFailed as failed:
        return failed.response()
    return json_response(shape(doc) if shape else doc)
