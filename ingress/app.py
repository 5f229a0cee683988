"""The ingress application: built from settings, resources opened in the lifespan."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from aibroker.routes import build_route_table
from aibroker.runtime.service import EXIT_MARGIN_S, exit_after
from aibroker.settings import Settings
from ingress import (
    admin_api,
    api,
    batches_api,
    deliveries_api,
    dlq_api,
    errors,
    files_api,
    health,
    requests_api,
)
from ingress.bodylimit import BodyLimit
from ingress.state import open_services

log = logging.getLogger(__name__)


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
    )
    errors.install(app)
    if settings.otel.endpoint:
        # A server span per HTTP call; the request's Kafka record carries its context on to
        # the dispatcher. Without an endpoint the middleware would only cost time per call.
        FastAPIInstrumentor.instrument_app(app, excluded_urls="health/.*,metrics")
    app.include_router(api.router)
    app.include_router(requests_api.router)
    app.include_router(admin_api.router)
    app.include_router(dlq_api.router)
    app.include_router(deliveries_api.router)
    app.include_router(files_api.router)
    app.include_router(batches_api.router)
    app.include_router(health.router)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.ingress.max_body_bytes,
        paths={"/v1/files": settings.batch.max_file_bytes},
    )
    return app
