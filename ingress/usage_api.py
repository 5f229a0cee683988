"""`GET /admin/v1/usage`: requests, errors, tokens, cost and latency percentiles from the usage
ledger (hourly counters the usage consumer keeps from the `usage` topic), filtered and grouped.
A tenant admin sees its own tenant only."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from aibroker.errors import InvalidRequest
from aibroker.identity import Permission, scope_of
from aibroker.usage_report import HOUR_S, GroupBy, hour_of, report
from ingress.audit_api import MAX_TIME
from ingress.auth import Admin, authorize
from ingress.state import services
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1", tags=["admin"])

MAX_RANGE_S = 93 * 86400
"""The longest span one call reads (about a quarter)."""


@router.get("/usage")
async def usage(
    request: Request,
    caller: Admin,
    tenant: Annotated[str | None, Query()] = None,
    model: Annotated[str | None, Query(description="The model as clients named it.")] = None,
    user: Annotated[str | None, Query(description="The end user a JWT named.")] = None,
    since: Annotated[
        float | None,
        Query(alias="from", ge=0, le=MAX_TIME, description="Unix time; default 24 h ago."),
    ] = None,
    until: Annotated[
        float | None, Query(alias="to", ge=0, le=MAX_TIME, description="Unix time; default now.")
    ] = None,
    group_by: Annotated[
        str | None, Query(description="Comma-separated: tenant, model, user, hour, day.")
    ] = None,
) -> Response:
    """Hour-granular: `from` and `to` select whole hours."""
    scope = scope_of(caller, tenant)
    await authorize(request, caller, Permission.USAGE_READ, scope)
    end = time.time() if until is None else until
    start = end - 86400 if since is None else since
    if not 0 <= end - start <= MAX_RANGE_S:
        raise InvalidRequest("`from` must be before `to`, at most 93 days apart.", param="from")
    try:
        groups = [GroupBy(g.strip()) for g in group_by.split(",") if g.strip()] if group_by else []
    except ValueError:
        raise InvalidRequest(
            f"group_by takes {', '.join(g.value for g in GroupBy)}.", param="group_by"
        ) from None
    ledger = services(request).usage
    tenants = [scope] if scope is not None else await ledger.tenants()
    last = hour_of(end - 1e-6) if end > start else hour_of(end)
    counters = await ledger.hours(tenants, hour_of(start), last)
    rows = report(counters, groups, model=model, user=user)
    window = {"from": hour_of(start) * HOUR_S, "to": (last + 1) * HOUR_S}
    return json_response({"object": "usage", **window, "group_by": groups, "data": rows})
