"""The operator console at `/console`: static files shipped in the package (`ingress/console/`),
a client of the admin API like curl is, with no route of its own behind it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).with_name("console")
PATH = "/console"

HEADERS = {
    # Only the console's own scripts run, and no other site may frame it (clickjacking): a
    # page that holds an admin key in sessionStorage must not run anyone else's code.
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    """Static files with the console's security headers on every answer."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    """Serve the console under `/console/` (`/console` redirects there)."""
    app.mount(PATH, ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")
