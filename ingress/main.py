"""`aibroker ingress`: serve the app with uvicorn (uvloop, httptools)."""

from __future__ import annotations

from typing import Any

import uvicorn

from aibroker.settings import Settings
from ingress.app import create_app


def run(settings: Settings) -> None:
    uvicorn.run(create_app(settings), **server_options(settings))


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options. `log_config=None`: uvicorn installs no handler or format of its own,
    so its loggers (`uvicorn.error`; `uvicorn.access` is off) reach the root logger and come
    out as our JSON lines (`aibroker.telemetry.logs`)."""
    return {
        "host": settings.ingress.host,
        "port": settings.ingress.port,
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": int(settings.ingress.drain_timeout_s),
    }
