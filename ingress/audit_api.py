"""`GET /admin/v1/audit`: the audit log, oldest first, filtered by tenant, actor, action and
time, read from the `audit` topic page by page (`next_after` is the cursor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from aibroker.identity import Permission, scope_of
from aibroker.kafka.clients import decode
from aibroker.kafka.log_reader import MAX_OFFSET, offset_at, read_from
from ingress.auth import Admin, authorize
from ingress.dlq_api import reader
from ingress.state import services
from ingress.views import json_response
from schemas.audit import AuditEntry

router = APIRouter(prefix="/admin/v1", tags=["admin"])

MAX_TIME = 4_102_444_800.0
"""2100-01-01: a later (or infinite) time is a client's mistake, answered 400."""

SCAN_LIMIT = 5000
"""Records one page reads at most, matching or not; `next_after` goes on from there."""
CHUNK = 500


@router.get("/audit")
async def audit_log(
    request: Request,
    caller: Admin,
    tenant: Annotated[str | None, Query(description="Entries about this tenant.")] = None,
    actor: Annotated[
        str | None, Query(description="A key prefix, `jwt:<sub>`, `bootstrap`.")
    ] = None,
    action: Annotated[str | None, Query(description="e.g. `key.create`, or `key` for all.")] = None,
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
    """Who did what to which object, and how it ended; a tenant admin sees its tenant's."""
    scope = scope_of(caller, tenant)
    await authorize(request, caller, Permission.AUDIT_READ, scope)
    svc = services(request)
    topic = svc.names.audit
    entries: list[AuditEntry] = []
    async with reader(svc) as consumer:
        start = after + 1
        if since is not None:
            start = max(start, await offset_at(consumer, topic, since))
        scanned, last, done = 0, after, False
        while len(entries) < limit and scanned < SCAN_LIMIT and not done:
            records = await read_from(consumer, topic, start, CHUNK)
            done = len(records) < CHUNK
            for i, record in enumerate(records):
                last, scanned = record.offset, scanned + 1
                if until is not None and record.timestamp / 1000 >= until:
                    done = True
                    break
                try:
                    entry = decode(AuditEntry, record.value)
                except (ValidationError, ValueError):
                    continue
                if entry.matches(tenant=scope, actor=actor, action=action, until=until):
                    entries.append(entry)
                    if len(entries) == limit:
                        done = done and i == len(records) - 1
                        break
            start = last + 1
    data = [{"object": "audit_entry", **e.model_dump(mode="json")} for e in entries]
    return json_response({"object": "list", "data": data, "has_more": not done, "next_after": last})
