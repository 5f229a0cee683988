"""Admin routes of webhook deliveries: a request's delivery log, and redelivering a message
(the same `webhook-id` and payload, attempts from one)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from aibroker.errors import NotFound
from aibroker.identity import Permission
from ingress.auth import Admin, authorize
from ingress.state import services
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1", tags=["admin"])


@router.get("/requests/{request_id}/webhooks")
async def delivery_log(request_id: str, request: Request, caller: Admin) -> Response:
    """Every attempt to announce the request: webhook id, URL, event, attempt, the receiver's
    status or the error, and what followed (delivered, retryin, giveup, disable)."""
    data = await services(request).webhook_log.attempts(request_id)
    for tenant in {entry.get("tenant") for entry in data} or {caller.tenant}:
        await authorize(request, caller, Permission.WEBHOOKS_READ, tenant)
    return json_response({"object": "list", "data": data})


@router.post("/webhooks/{webhook_id}/redeliver", status_code=202)
async def redeliver(webhook_id: str, request: Request, caller: Admin) -> Response:
    svc = services(request)
    stored = await svc.webhook_log.message(webhook_id)
    if stored is None:
        raise NotFound(f"No webhook message '{webhook_id}'.", param="webhook_id")
    await authorize(request, caller, Permission.WEBHOOKS_WRITE, stored.tenant)
    await svc.publisher.deliver(stored.model_copy(update={"attempt": 1}))
    await svc.auditor.record(
        request,
        caller,
        "webhook.redeliver",
        tenant=stored.tenant,
        target=webhook_id,
        detail={"url": stored.url, "event": stored.event.value},
    )
    return json_response({"object": "webhook.redelivery", "webhook_id": webhook_id}, 202)
