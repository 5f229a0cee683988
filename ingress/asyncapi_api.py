"""`GET /asyncapi.json`: the AsyncAPI 3.0 document of this deployment's topics, for direct
producers (public, like `/openapi.json`)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ingress.state import services
from topics.asyncapi import deployment_document

router = APIRouter(tags=["operations"])


@router.get("/asyncapi.json")
async def asyncapi(request: Request) -> Response:
    """The topics, their keys, retention, envelopes and headers, under this deployment's
    prefix, with its dispatch topics. Made once per process (it takes ~0.1 s of CPU)."""
    state = request.app.state
    if getattr(state, "asyncapi", None) is None:
        svc = services(request)
        state.asyncapi = orjson.dumps(deployment_document(svc.settings, svc.routes))
    return Response(state.asyncapi, media_type="application/json")
