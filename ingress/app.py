"""The ingress application: built from settings, resources opened in the lifespan."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.middleware.cors import CORSMiddleware

from aibroker.routes import build_route_table
from aibroker.runtime.service import EXIT_MARGIN_S, exit_after
from aibroker.settings import Settings
from ingress import (
    api,
    asyncapi_api,
    audit_api,
    batches_api,
    cache_api,
    caller_api,
    deliveries_api,
    dlq_api,
    errors,
    files_api,
    guardrails_api,
    health,
    keys_api,
    rag_api,
    ratelimit_api,
    requests_api,
    responses_admin_api,
    responses_api,
    story_api,
    tenants_api,
    usage_api,
    vector_stores_api,
)
from ingress.bodylimit import BodyLimit
from ingress.console_app import mount_console
from ingress.response_headers import ResponseHeaders
from ingress.state import open_services

log = logging.getLogger(__name__)

EXPOSED_HEADERS = [
    "x-request-id",
    "x-aibroker-request-id",
    "openai-processing-ms",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "location",
    "x-aibroker-cost",
    "x-aibroker-cache",
    "x-aibroker-cache-score",
    *(
        f"x-ratelimit-{part}-{name}"
        for part in ("limit", "remaining", "reset")
        for name in ("requests", "tokens")
    ),
]
"""What a browser client may read of an answer (CORS)."""


def create_app(settings: Settings) -> FastAPI:
    routes = build_route_table(settings)
    instance = settings.ingress.instance or f"ing-{secrets.token_hex(4)}"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, routes, instance) as svc:
            app.state.services = svc
            yield
            # uvicorn has drained the HTTP connections; closing the clients must not hang
            # on a Kafka or Redis that is gone (a second signal exits at once, in uvicorn).
            closing = exit_after(EXIT_MARGIN_S * 2, "ingress was still closing its clients")
        closing.cancel()  # closed in time: the process (a test's, maybe) goes on

    app = FastAPI(
        title="aibroker",
        version="0.1.0",
        lifespan=lifespan,
        responses=errors.ERROR_RESPONSES,
        description="OpenAI-compatible, Kafka-backed asynchronous broker for AI requests.",
        # Our own spans and metrics (OTel instrumentation, aibroker_* metrics) are the ones:
        # FastAPI's would duplicate them, and its per-request check costs 2 % of ingress CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    errors.install(app)
    if settings.otel.endpoint:
        # A server span per HTTP call; the request's Kafka record carries its context on to
        # the dispatcher. Without an endpoint the middleware would only cost time per call.
        FastAPIInstrumentor.instrument_app(app, excluded_urls="health/.*,metrics")
    app.include_router(api.router)
    app.include_router(requests_api.router)
    app.include_router(responses_api.router)
    app.include_router(keys_api.router)
    app.include_router(tenants_api.router)
    app.include_router(guardrails_api.router)
    app.include_router(dlq_api.router)
    app.include_router(audit_api.router)
    app.include_router(usage_api.router)
    app.include_router(cache_api.router)
    app.include_router(ratelimit_api.router)
    app.include_router(deliveries_api.router)
    app.include_router(files_api.router)
    app.include_router(batches_api.router)
    app.include_router(rag_api.router)
    app.include_router(vector_stores_api.router)
    app.include_router(health.router)
    app.include_router(asyncapi_api.router)
    app.include_router(caller_api.router)
    app.include_router(story_api.router)
    app.include_router(responses_admin_api.router)
    mount_console(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.ingress.max_body_bytes,
        paths={"/v1/files": settings.batch.max_file_bytes},
    )
    if settings.ingress.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.ingress.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(ResponseHeaders)  # outermost: every answer, refusals included
    return app
