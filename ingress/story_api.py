"""`GET /admin/v1/requests/{id}/story`: one request told in order (accepted, queued, each
attempt with its target, status and duration, fallbacks, the end, webhook deliveries, cost),
for the console and for curl alike. Read under `usage:read` on the request's tenant."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from aibroker.errors import NotFound
from aibroker.identity import Permission
from aibroker.stores.results import RedisRequestStore
from aibroker.stores.story import RedisStory
from ingress.auth import Admin, authorize
from ingress.state import services
from ingress.story import story_document
from ingress.views import json_response

router = APIRouter(prefix="/admin/v1", tags=["admin"])


@router.get("/requests/{request_id}/story")
async def request_story(request_id: str, request: Request, caller: Admin) -> Response:
    """The request's story while its state lasts (`AIBROKER_REDIS_TTL_S`); 404 after, or for
    an id the broker never accepted."""
    svc = services(request)
    ttl_s = svc.settings.redis.ttl_s
    state = await RedisRequestStore(svc.redis, ttl_s).get(request_id)
    if state is None:
        raise NotFound(f"No request '{request_id}' (or its state has expired).", param="id")
    await authorize(request, caller, Permission.USAGE_READ, state.tenant)
    story = RedisStory(svc.redis, ttl_s)
    calls, waits = await story.calls(request_id), await story.waits(request_id)
    deliveries = await svc.webhook_log.attempts(request_id)
    return json_response(story_document(request_id, state, calls, deliveries, waits))
