"""The operator console at `/console`: static files shipped in the package (`ingress/console/`),
a client of the admin API like curl is, with no route of its own behind it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from aibroker.settings import JwtIssuer

CONSOLE_DIR = Path(__file__).with_name("console")
PATH = "/console"

HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def content_security_policy(issuers: list[JwtIssuer]) -> str:
    """Only the console's own scripts run, and no other site may frame it (clickjacking): a
    page that holds an admin key in sessionStorage must not run anyone else's code. It talks
    to this broker, and to the trusted OIDC issuers' origins for a sign-in (their discovery
    document and token endpoint), nowhere else."""
    origins = sorted({_origin(i.issuer) for i in issuers})
    connect = " ".join(["'self'", *origins])
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class ConsoleFiles(StaticFiles):
    """Static files with the console's security headers on every answer."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        services = getattr(scope["app"].state, "services", None)
        issuers = services.settings.auth.jwt_issuers if services is not None else []
        response.headers.update(HEADERS)
        response.headers["content-security-policy"] = content_security_policy(issuers)
        return response


def mount_console(app: FastAPI) -> None:
    """Serve the console under `/console/` (`/console` redirects there)."""
    app.mount(PATH, ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")
