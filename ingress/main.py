"""`aibroker ingress`: serve the app with uvicorn (uvloop, httptools)."""

from __future__ import annotations

import uvicorn

from aibroker.settings import Settings
from ingress.app import create_app


def run(settings: Settings) -> None:
    uvicorn.run(
        create_app(settings),
        host=settings.ingress.host,
        port=settings.ingress.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=int(settings.ingress.drain_timeout_s),
    )
