"""`GET /admin/v1/audit`: the audit log, oldest first, filtered by tenant, actor, action, claimed
subject and time, read from the `audit` topic page by page (`next_after` is the cursor). Each
call answers within its scan budget (`ingress/audit_scan.py`): a sparse filter over a long log
answers with what it found and `has_more`, and the next call goes on from `next_after`."""

from __future__ import annotations

import asyncio
from typing import Annotated

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from aibroker.errors import Unavailable
from aibroker.identity import Permission, scope_of
from aibroker.kafka.log_reader import MAX_OFFSET, offset_at
from aibroker.settings import KafkaSettings
from ingress.audit_scan import Budget, Filters, Page, audit_reader, scan
from ingress.auth import Admin, authorize
from ingress.state import services
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1", tags=["admin"])

MAX_TIME = 4_102_444_800.0
"""2100-01-01: a later (or infinite) time is a client's mistake, answered 400."""

BUDGET = Budget()
SETUP_S = 10.0
"""Connecting and finding the first offset, beside the scan's own budget: past it, 503."""


@router.get("/audit")
async def audit_log(
    request: Request,
    caller: Admin,
    tenant: Annotated[str | None, Query(description="Entries about this tenant.")] = None,
    actor: Annotated[
        str | None,
        Query(description="A key prefix, `jwt:<sub>`, `bootstrap`, `anonymous` (refusals)."),
    ] = None,
    action: Annotated[str | None, Query(description="e.g. `key.create`, or `key` for all.")] = None,
    claimed_subject: Annotated[
        str | None,
        Query(description="What a refused credential claimed: a key prefix, `jwt:<sub>`."),
    ] = None,
    since: Annotated[
        float | None, Query(alias="from", ge=0, le=MAX_TIME, description="Unix time, inclusive.")
    ] = None,
    until: Annotated[
        float | None, Query(alias="to", ge=0, le=MAX_TIME, description="Unix time, exclusive.")
    ] = None,
    after: Annotated[
        int, Query(ge=-1, le=MAX_OFFSET, description="The last page's `next_after`.")
    ] = -1,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Who did what to which object, and how it ended; a tenant admin sees its tenant's. A page
    may hold fewer than `limit` entries (even none) with `has_more`: the scan budget ran out."""
    scope = scope_of(caller, tenant)
    await authorize(request, caller, Permission.AUDIT_READ, scope)
    svc = services(request)
    filters = Filters(scope, actor, action, claimed_subject, since, until)
    try:
        async with asyncio.timeout(SETUP_S + BUDGET.seconds):
            page = await _page(svc.settings.kafka, svc.names.audit, after, filters, limit)
    except (KafkaError, TimeoutError) as exc:
        raise Unavailable("The audit log cannot be read right now.", retry_after=2) from exc
    data = [{"object": "audit_entry", **e.model_dump(mode="json")} for e in page.entries]
    return json_response(
        {"object": "list", "data": data, "has_more": page.more, "next_after": page.last}
    )


async def _page(kafka: KafkaSettings, topic: str, after: int, filters: Filters, limit: int) -> Page:
    async with audit_reader(kafka, topic) as consumer:
        start = after + 1
        if filters.since is not None:
            # Kafka's time index; each entry's time is checked too (Tansu's index answers 0).
            start = max(start, await offset_at(consumer, topic, filters.since))
        return await scan(consumer, topic, start, filters, limit, BUDGET)
