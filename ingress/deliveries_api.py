"""Admin routes of webhook deliveries: a request's delivery log, and redelivering a message
(the same `webhook-id` and payload, attempts from one)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from aibroker.errors import NotFound
from aibroker.kafka.clients import encode
from ingress.admin_api import Admin
from ingress.state import services
from ingress.views import json_response
from schemas.envelopes import Delivery

router = APIRouter(prefix="/admin/v1", tags=["admin"])


@router.get("/requests/{request_id}/webhooks")
async def delivery_log(request_id: str, request: Request, _: Admin) -> Response:
    """Every attempt to announce the request: webhook id, URL, event, attempt, the receiver's
    status or the error, and what followed (delivered, retryin, giveup, disable)."""
    entries = await services(request).redis.lrange(f"aib:wh:log:{request_id}", 0, -1)
    data = [orjson.loads(e) for e in entries]
    return json_response({"object": "list", "data": data})


@router.post("/webhooks/{webhook_id}/redeliver", status_code=202)
async def redeliver(webhook_id: str, request: Request, _: Admin) -> Response:
    svc = services(request)
    stored = await svc.redis.get(f"aib:wh:msg:{webhook_id}")
    if stored is None:
        raise NotFound(f"No webhook message '{webhook_id}'.", param="webhook_id")
    delivery = Delivery.model_validate_json(stored).model_copy(update={"attempt": 1})
    await svc.publisher.producer.send_and_wait(
        svc.publisher.names.webhooks, encode(delivery), key=delivery.request_id.encode()
    )
    return json_response({"object": "webhook.redelivery", "webhook_id": webhook_id}, 202)
