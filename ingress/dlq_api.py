"""Admin routes of the dead-letter topic: list what is there, replay one record."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from aiokafka import AIOKafkaConsumer
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from aibroker.identity import Permission, scope_of
from aibroker.kafka import dlq
from aibroker.kafka.clients import make_consumer
from aibroker.kafka.log_reader import MAX_OFFSET
from ingress.auth import Admin, authorize
from ingress.state import Services, services
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1/dlq", tags=["admin"])


@contextlib.asynccontextmanager
async def reader(svc: Services) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = make_consumer(svc.settings.kafka, group_id=None)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


@router.get("")
async def list_dead_letters(
    request: Request,
    caller: Admin,
    after: Annotated[
        int, Query(ge=-1, le=MAX_OFFSET, description="List from the offset after this.")
    ] = -1,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    tenant: Annotated[str | None, Query(description="Only this tenant's requests.")] = None,
) -> Response:
    """Dead letters, oldest first: offset, kind (`poison`, `exhausted`, `internal`), reason,
    source, and the request's id, tenant and model when the value is a request. A tenant
    admin sees its own tenant's only. `next_after` pages on."""
    scope = scope_of(caller, tenant)
    await authorize(request, caller, Permission.DLQ_READ, scope)
    svc = services(request)
    async with reader(svc) as consumer:
        records = await dlq.read(consumer, svc.names, after + 1, limit)
    letters = [dlq.letter(r) for r in records]
    data = [x.document() for x in letters if scope is None or x.tenant == scope]
    doc = {"object": "list", "data": data, "has_more": len(records) == limit}
    return json_response(doc | {"next_after": records[-1].offset if records else after})


@router.post("/{offset}/replay")
async def replay_dead_letter(
    offset: Annotated[int, Path(ge=0, le=MAX_OFFSET)], request: Request, caller: Admin
) -> Response:
    """A poison record goes back to its source topic; a failed request is submitted again as
    a new request (answered with its id), its first result standing."""
    svc = services(request)
    async with reader(svc) as consumer:
        record = await dlq.one(consumer, svc.names, offset)
    tenant = dlq.letter(record).tenant
    await authorize(request, caller, Permission.DLQ_WRITE, tenant)
    sent = await dlq.replay(record, svc.publisher, svc.names)
    doc = {"object": "dead_letter.replay", "offset": offset, "topic": sent.topic}
    if sent.request is not None:
        await svc.submission.mark_queued(sent.request)
        doc["request_id"] = sent.request.id
    await svc.auditor.record(
        request,
        caller,
        "dlq.replay",
        tenant=tenant,
        target=str(offset),
        detail={"topic": sent.topic},
    )
    return json_response(doc)
